-- The database every xtcp_async table lives in.
CREATE DATABASE IF NOT EXISTS xtcp;
