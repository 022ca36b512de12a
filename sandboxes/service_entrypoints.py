"""Entrypoints of Viva's offline service images (sandboxes/service_images.py), written to behave like the official
images' a candidate's compose file names: start as root, give the data directory to the service's own user, drop
to that user (gosu, or setpriv where the image has no gosu), initialise on first start, then exec the server on
127.0.0.1. Kept as text here so they ship inside the package with no package-data rule."""

from __future__ import annotations

POSTGRES = r"""#!/bin/bash
# Viva's offline PostgreSQL entrypoint, after the official image's: the same variables (POSTGRES_PASSWORD, _USER,
# _DB, _INITDB_ARGS, _HOST_AUTH_METHOD and their *_FILE forms), the same /docker-entrypoint-initdb.d handling.
set -Eeo pipefail
shopt -s nullglob

file_env() {
	local var="$1" fallback="${2:-}" file_var="${1}_FILE" value
	if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
		echo >&2 "error: both $var and $file_var are set (but are exclusive)"
		exit 1
	fi
	value="$fallback"
	if [ -n "${!var:-}" ]; then value="${!var}"; elif [ -n "${!file_var:-}" ]; then value="$(< "${!file_var}")"; fi
	export "$var"="$value"
	unset "$file_var"
}

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
	# As root: the data directory (a tmpfs, root's) and the socket directory become postgres's, then drop to it.
	mkdir -p "$PGDATA" /var/run/postgresql
	find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
	chmod 700 "$PGDATA"
	chmod 3777 /var/run/postgresql
	exec gosu postgres "$BASH_SOURCE" "$@"
fi

if [ "$1" = postgres ]; then
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != trust ]; then
			echo >&2 "Error: Database is uninitialized and superuser password is not specified."
			echo >&2 "You must specify POSTGRES_PASSWORD to a non-empty value for the superuser."
			exit 1
		fi
		pwfile="$(mktemp)"
		printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
		# TCP connections need the password, as they do when the app reaches the official image over a network;
		# the Unix socket is trusted for this script (and the healthcheck's pg_isready/psql), as in the official one.
		# shellcheck disable=SC2086
		initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host="$auth" \
			--encoding=UTF8 --locale=C.UTF-8 $POSTGRES_INITDB_ARGS -D "$PGDATA"
		rm -f "$pwfile"
		# The temporary server listens on a private socket directory only: a healthcheck's pg_isready must not
		# call the database ready while it is still being initialised (the official image has that race).
		init_socket="$(mktemp -d)"
		options="-c listen_addresses='' -c unix_socket_directories=$init_socket -p ${PGPORT:-5432}"
		pg_ctl -D "$PGDATA" -o "$options" -w start
		export PGHOST="$init_socket"
		psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
		if [ "$POSTGRES_DB" != postgres ]; then
			"${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<< 'CREATE DATABASE :"db";'
		fi
		export PGUSER="$POSTGRES_USER" PGDATABASE="$POSTGRES_DB"
		for f in /docker-entrypoint-initdb.d/*; do
			case "$f" in
				*.sh) if [ -x "$f" ]; then echo "$0: running $f"; "$f"; else echo "$0: sourcing $f"; . "$f"; fi ;;
				*.sql) echo "$0: running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
				*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${psql[@]}" --dbname "$POSTGRES_DB" ;;
				*.sql.xz) echo "$0: running $f"; xzcat "$f" | "${psql[@]}" --dbname "$POSTGRES_DB" ;;
				*) echo "$0: ignoring $f" ;;
			esac
		done
		pg_ctl -D "$PGDATA" -m fast -w stop
		unset PGHOST PGUSER PGDATABASE
		rmdir "$init_socket"
		echo "PostgreSQL init process complete; ready for start up."
	fi
	shift
	exec postgres -c listen_addresses=127.0.0.1 "$@"
fi

exec "$@"
"""

REDIS = r"""#!/bin/sh
# Viva's offline Redis entrypoint, after the official image's: options or a .conf file alone mean redis-server.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
	# As root: /data (a tmpfs, root's) becomes redis's, then drop to it.
	find /data \! -user redis -exec chown redis:redis '{}' +
	exec gosu redis "$0" "$@"
fi

if [ "$1" = redis-server ]; then
	case " $* " in
		*" --bind "*) ;;
		*) set -- "$@" --bind 127.0.0.1 ;;
	esac
	umask 0077
fi

exec "$@"
"""

CHROMA = r"""#!/bin/sh
# Viva's offline Chroma entrypoint: `chroma run` on 127.0.0.1, port 8000 and /data unless told otherwise. Options
# alone (as some compose files pass to the official image) keep their --port/--path; the others are not
# `chroma run`'s and are left out, with a line saying so.
set -e

if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
	port=8000
	path="${PERSIST_DIRECTORY:-}"
	if [ -z "$path" ]; then
		if mountpoint -q /chroma/chroma 2>/dev/null; then path=/chroma/chroma; else path=/data; fi
	fi
	while [ $# -gt 0 ]; do
		case "$1" in
			--port) port="$2"; shift 2 ;;
			--port=*) port="${1#*=}"; shift ;;
			--path) path="$2"; shift 2 ;;
			--path=*) path="${1#*=}"; shift ;;
			*) echo "viva: the offline chroma image ignores option $1" >&2; shift ;;
		esac
	done
	set -- chroma run --host 127.0.0.1 --port "$port" --path "$path"
	# chromadb 0.x logs to ./chroma.log: start where it may write (the root is read-only).
	mkdir -p "$path" 2>/dev/null || true
	cd "$path" 2>/dev/null || cd /tmp
fi

if [ "$1" = chroma ] && [ "$(id -u)" = 0 ]; then
	# As root: the data directories mounted writable (tmpfs, root's) become chroma's, then drop to it.
	for directory in /data /chroma/chroma; do
		if mountpoint -q "$directory"; then find "$directory" \! -user chroma -exec chown chroma:chroma '{}' +; fi
	done
	exec setpriv --reuid=chroma --regid=chroma --init-groups "$0" "$@"
fi

exec "$@"
"""
