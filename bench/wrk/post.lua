-- POST one new article per request, as the admin.
-- Arguments: <token> <tag>
dofile("summary.lua")

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  wrk.body = '{"title": "Written by wrk", "description": "A bench write.", '
    .. '"body": "Lorem ipsum dolor sit amet.", "tags": ["' .. args[2] .. '"]}'
end
