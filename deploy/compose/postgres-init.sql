-- The second database: SapixDB's is POSTGRES_DB (sapixdb), Genesis DB's is this one.
CREATE DATABASE genesisdb OWNER decisiontrail;
