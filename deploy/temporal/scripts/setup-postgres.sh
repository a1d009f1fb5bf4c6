#!/bin/sh
# Temporal's schema in PostgreSQL, as the official compose files do it (temporalio/samples-server,
# compose/scripts/setup-postgres.sh) with temporal-sql-tool from temporalio/admin-tools,
# made safe to re-run: on every `docker compose up` the databases already exist and
# update-schema applies only versions newer than the installed one.
set -eu

: "${POSTGRES_SEEDS:?}" "${DB_PORT:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

echo "waiting for PostgreSQL at ${POSTGRES_SEEDS}:${DB_PORT}"
until nc -z -w 5 "$POSTGRES_SEEDS" "$DB_PORT"; do sleep 1; done

sql() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

for db in temporal temporal_visibility; do
    case "$db" in
        temporal) dir="$SCHEMA_DIR/temporal/versioned" ;;
        *) dir="$SCHEMA_DIR/visibility/versioned" ;;
    esac
    sql --db "$db" create 2>/dev/null && echo "created database $db" || echo "database $db exists"
    if sql --db "$db" update-schema -d "$dir" 2>/dev/null; then
        echo "schema of $db is up to date"
    else
        # a new database has no schema_version table yet: install the version tables, then update
        sql --db "$db" setup-schema -v 0.0
        sql --db "$db" update-schema -d "$dir"
    fi
done
echo "Temporal schema setup complete"
