#!/bin/sh
# Runs once, when the PostgreSQL volume is first initialised (/docker-entrypoint-initdb.d).
# Creates the two roles of docker-compose.yml:
#   temporal       may create databases: the temporal-setup job creates `temporal` and
#                  `temporal_visibility` and installs Temporal's schema in them;
#   notifications  owns the application database `notifications` (`notifications migrate`).
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v temporal_password="${TEMPORAL_DB_PASSWORD:?}" \
    -v notifications_password="${NOTIFICATIONS_DB_PASSWORD:?}" <<'SQL'
CREATE ROLE temporal WITH LOGIN CREATEDB PASSWORD :'temporal_password';
CREATE ROLE notifications WITH LOGIN PASSWORD :'notifications_password';
CREATE DATABASE notifications OWNER notifications;
SQL
