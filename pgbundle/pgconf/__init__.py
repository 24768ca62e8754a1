"""Pure PostgreSQL configuration rendering: postgresql.conf, pg_hba.conf, the start-script environment."""
