-- GET <url path><id> for ids read from a file, one a line (shuffled by the
-- bench). Each thread walks its own stretch of the list, so the ids it asks
-- for are distinct while the run lasts.
-- Arguments: <ids file> <first position> <stretch length>
dofile("summary.lua")

local threads = 0
function setup(thread)
  thread:set("number", threads)
  threads = threads + 1
end

function init(args)
  ids = {}
  for line in io.lines(args[1]) do
    ids[#ids + 1] = line
  end
  position = tonumber(args[2]) + number * tonumber(args[3])
end

function request()
  position = position % #ids + 1
  return wrk.format(nil, wrk.path .. ids[position])
end
