-- Runs once, when the postgres container initialises an empty data volume
-- (/docker-entrypoint-initdb.d). One database per service: no service reads
-- another's. `python -m tools.bootstrap` would also create missing ones.
CREATE DATABASE articles;
CREATE DATABASE events;
CREATE DATABASE users;
CREATE DATABASE auth;
CREATE DATABASE notification;
