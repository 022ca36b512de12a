#!/usr/bin/env bash
# Re-create the development corpus's checkouts (.corpus/<owner>+<name>/) from bench/corpus/repos.toml.
#
# Usage: scripts/corpus-checkout.sh [owner/name ...]      (default: every repository in repos.toml)
#
# Each repository's snapshot must already be on this machine as a bare git directory,
# $VIVA_MIRROR_DIR/<owner>+<name>/repo (default /work/.mirror), as the session tool `fetch github:<owner>/<name>`
# leaves it. Repositories whose snapshot is absent are listed at the end, with the fetch to run.
# The pinned commit of repos.toml is checked out (not the snapshot's newest one); a checkout that already holds
# that commit (recorded in .corpus/.commits/<owner>+<name>) is left alone unless CORPUS_FORCE=1.
# Snapshots lack files of 4 MiB and more (and LFS content): those paths are left out of the checkout and counted.
# Nothing here goes into git: .corpus/ is git-ignored.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MIRRORS="${VIVA_MIRROR_DIR:-/work/.mirror}"
CORPUS="$ROOT/.corpus"
TOML="$ROOT/bench/corpus/repos.toml"
PYTHON="$ROOT/.venv/bin/python"
[ -x "$PYTHON" ] || PYTHON=python3

MARKS="$CORPUS/.commits"   # which commit each checkout holds; kept outside the checkout, which is graded
mkdir -p "$CORPUS" "$MARKS"
missing=()
# name<TAB>commit per line, from the TOML (tomllib: Python 3.11+).
entries="$("$PYTHON" - "$TOML" "$@" <<'PY'
import sys, tomllib
repos = tomllib.load(open(sys.argv[1], "rb"))["repo"]
wanted = set(sys.argv[2:])
for name in sorted(wanted - {repo["name"] for repo in repos}):
    print(f"not in repos.toml: {name}", file=sys.stderr)
for repo in repos:
    if not wanted or repo["name"] in wanted:
        print(f"{repo['name']}\t{repo['commit']}")
PY
)"

while IFS=$'\t' read -r name commit; do
    [ -n "$name" ] || continue
    slug="${name/\//+}"
    git_dir="$MIRRORS/$slug/repo"
    dest="$CORPUS/$slug"
    if [ ! -d "$git_dir" ]; then
        missing+=("$name")
        continue
    fi
    if [ "${CORPUS_FORCE:-0}" != "1" ] && [ -d "$dest" ] && [ -f "$MARKS/$slug" ] && [ "$(cat "$MARKS/$slug")" = "$commit" ]; then
        echo "ok       $name (already at ${commit:0:12})"
        continue
    fi
    if ! git --git-dir="$git_dir" cat-file -e "$commit^{commit}" 2>/dev/null; then
        echo "MISSING  $name: the snapshot lacks commit $commit (fetch again, or update repos.toml)" >&2
        missing+=("$name")
        continue
    fi
    # Paths whose blob the snapshot lacks (large files, LFS): excluded from the archive, which would fail on them.
    # (`cat-file --batch-check` answers "<oid> missing" for those, without the rest of the line: join by oid.)
    tree="$(git --git-dir="$git_dir" ls-tree -r --format='%(objecttype) %(objectname) %(path)' "$commit")"
    absent="$(awk '$1 == "blob" {print $2}' <<<"$tree" | git --git-dir="$git_dir" cat-file --batch-check 2>/dev/null \
        | awk '$2 == "missing" {print $1}')"
    excludes=()
    if [ -n "$absent" ]; then
        while IFS= read -r path; do
            excludes+=(":(exclude,literal)$path")
        done < <(awk 'NR == FNR {gone[$1] = 1; next} $1 == "blob" && ($2 in gone) {print substr($0, length($1) + length($2) + 3)}' \
            <(echo "$absent") <(echo "$tree"))
    fi
    rm -rf "$dest"
    mkdir -p "$dest"
    if [ ${#excludes[@]} -gt 0 ]; then
        # git still names each excluded blob it cannot read on stderr; the archive itself is complete (exit status 0).
        git --git-dir="$git_dir" archive "$commit" -- . "${excludes[@]}" 2>/dev/null | tar -x -C "$dest"
    else
        git --git-dir="$git_dir" archive "$commit" | tar -x -C "$dest"
    fi
    echo "$commit" >"$MARKS/$slug"
    echo "checkout $name @ ${commit:0:12}${excludes:+ (${#excludes[@]} large file(s) absent from the snapshot)}"
done <<<"$entries"

if [ ${#missing[@]} -gt 0 ]; then
    echo
    echo "${#missing[@]} repositories still need a snapshot; in a session with the fetch tool:"
    for name in "${missing[@]}"; do
        echo "  fetch github:$name"
    done
fi
