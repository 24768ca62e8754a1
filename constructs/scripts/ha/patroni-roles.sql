-- Patroni's replication and rewind roles, run by patroni-hook.sh on the
-- primary; psql variables: secrets_dir, replication_user, rewind_user.
-- Patroni creates them when it bootstraps a new cluster, but not when it
-- adopts an existing database (scaling from replicas: 1), and it never
-- updates their passwords: create what is missing, set the privileges,
-- re-sync the passwords from the Secret files.
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = panic;
SET pg_stat_statements.track_utility = off;
SET client_min_messages = warning;

SELECT format('CREATE ROLE %I', wanted.role)
FROM unnest(ARRAY[:'replication_user', :'rewind_user']) AS wanted(role)
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = wanted.role) \gexec

\set replication_pw `cat :'secrets_dir'/postgres_replication_pw`
\set rewind_pw `cat :'secrets_dir'/postgres_rewind_pw`
ALTER ROLE :"replication_user" LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS
    PASSWORD :'replication_pw';
ALTER ROLE :"rewind_user" LOGIN NOREPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS
    PASSWORD :'rewind_pw';
\unset replication_pw
\unset rewind_pw

-- What pg_rewind reads on the source server, and nothing else. It connects to
-- the postgres database, which init.sql closes to PUBLIC.
GRANT CONNECT ON DATABASE postgres TO :"rewind_user";
GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO :"rewind_user";
GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO :"rewind_user";
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO :"rewind_user";
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO :"rewind_user";
