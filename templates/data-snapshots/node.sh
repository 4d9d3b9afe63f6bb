#!/usr/bin/env bash
# Corral data snapshots: the node side (master/data-snapshots/node-script.ts sends it over SSH).
set -euo pipefail
op=$1
CORRAL_SECRET=
IFS= read -r CORRAL_SECRET || true
P=$CORRAL_PATH
say() { printf 'CORRAL %s\n' "$*" >&2; }
die() { printf 'CORRAL error %s\n' "$*" >&2; exit 3; }
now_ms() { date +%s%3N; }
gz() { if command -v pigz >/dev/null 2>&1; then pigz -1; else gzip -1; fi; }
gunz() { if command -v pigz >/dev/null 2>&1; then pigz -dc; else gzip -dc; fi; }
TMP=$(mktemp -d /tmp/corral-data.XXXXXX)
chmod 700 "$TMP"
SNAP=
LVSNAP=
LVMNT=
SLOT=
SWAPPED=0
DONE=0
OLD="$P.corral-old-$CORRAL_ID"
cleanup() {
  rc=$?
  if [ -n "$SLOT" ]; then psql -X -q -A -t -c "SELECT pg_drop_replication_slot('$SLOT')" >/dev/null 2>&1 || say "warning replication slot $SLOT left behind"; fi
  if [ -n "$SNAP" ]; then btrfs subvolume delete "$SNAP" >/dev/null 2>&1 || say "warning btrfs snapshot $SNAP left behind"; fi
  # The LVM snapshot's mount sits inside $TMP: unmounted first, or rm -rf below would walk into it.
  if [ -n "$LVMNT" ]; then umount "$LVMNT" 2>/dev/null || { say "warning LVM snapshot still mounted at $LVMNT"; TMP=; }; fi
  if [ -n "$LVSNAP" ]; then lvremove -f -y "$LVSNAP" >/dev/null 2>&1 || say "warning LVM snapshot $LVSNAP left behind"; fi
  if [ "$SWAPPED" = 1 ] && [ "$DONE" != 1 ]; then
    say "rollback putting the previous data back"
    run_stop >/dev/null 2>&1 || true
    rm -rf "$P" && mv "$OLD" "$P" && say "rolledback $P" || say "warning previous data left at $OLD"
    run_start >/dev/null 2>&1 || say "warning service did not start after rollback"
  fi
  if [ -n "$TMP" ]; then rm -rf "$TMP"; fi
  exit $rc
}
trap cleanup EXIT

# The btrfs subvolume holding a path: subvolume roots have inode 256 on btrfs.
subvol_of() {
  local d=$1
  [ "$(stat -f -c %T "$d" 2>/dev/null)" = btrfs ] || return 1
  command -v btrfs >/dev/null 2>&1 || return 1
  while [ "$d" != / ]; do
    if [ "$(stat -c %i "$d")" = 256 ]; then printf '%s' "$d"; return 0; fi
    d=$(dirname "$d")
  done
  return 1
}
# The LVM logical volume mounted where a path lives; sets LV (vg/lv), LVTOP (its mount point), LVFS.
lv_of() {
  command -v lvs >/dev/null 2>&1 && command -v findmnt >/dev/null 2>&1 || return 1
  # No process substitution here: a minimal system may lack /dev/fd.
  local mnt src info
  mnt=$(findmnt -n -o SOURCE,TARGET,FSTYPE -T "$1" 2>/dev/null) || return 1
  set -- $mnt
  [ $# -eq 3 ] || return 1
  src=$1 LVTOP=$2 LVFS=$3
  case "$src" in /dev/mapper/* | /dev/dm-* | /dev/*/*) ;; *) return 1 ;; esac
  info=$(lvs --noheadings -o vg_name,lv_name,segtype "$src" 2>/dev/null) || return 1
  set -- $info
  [ $# -ge 3 ] || return 1
  LV="$1/$2"
  LVTYPE=$3
}
# How the path can be snapshotted as of one instant: FSK=btrfs (SV, the subvolume) or FSK=lvm (LV...).
FSK=
fs_detect() {
  if SV=$(subvol_of "$1"); then FSK=btrfs; return 0; fi
  if lv_of "$1"; then FSK=lvm; return 0; fi
  return 1
}
# A read-only btrfs snapshot inside the subvolume itself (always the same file system); sets SNAP.
fs_snapshot() {
  SNAP="$1/.corral-snap-$CORRAL_ID"
  btrfs subvolume snapshot -r "$1" "$SNAP" >/dev/null
}
# An LVM snapshot of LV; sets LVSNAP. lvcreate suspends the origin (its file system frozen, writes
# waiting) only while the snapshot is set up. A thick snapshot's copy-on-write area must hold every
# block written to the origin until the copy ends: as large as the origin where the VG has the room, else
# all its free space (a full area invalidates the snapshot, and the copy then fails on read errors; it
# never yields a silently wrong archive). A thin volume's snapshot shares the pool and needs no size.
lv_snapshot() {
  local vg=${LV%%/*} name="corral-snap-$CORRAL_ID"
  if [ "$LVTYPE" = thin ]; then
    lvcreate -q -s -kn -n "$name" "$LV" >/dev/null
  else
    local size free
    size=$(lvs --noheadings --nosuffix --units b -o lv_size "$LV" | tr -d ' ')
    free=$(vgs --noheadings --nosuffix --units b -o vg_free "$vg" | tr -d ' ')
    [ "${free:-0}" -gt 0 ] || die "volume group $vg has no free space for a snapshot of $LV"
    if [ "$free" -ge "$size" ]; then
      lvcreate -q -s -l 100%ORIGIN -n "$name" "$LV" >/dev/null
    else
      lvcreate -q -s -l 100%FREE -n "$name" "$LV" >/dev/null
    fi
  fi
  LVSNAP="$vg/$name"
}
# Take the snapshot of what fs_detect found (the instant that counts; callers hold their lock around it).
fs_take() {
  if [ "$FSK" = btrfs ]; then fs_snapshot "$SV"; else lv_snapshot; fi
}
# The path as of the snapshot, in VIEW. An LVM snapshot is mounted read-only first: on a journalled file
# system the kernel replays the journal into the (writable) snapshot device, so the copy sees the file
# system as after a clean crash at the snapshot's instant; XFS refuses a second mount of one UUID without
# nouuid.
fs_open() {
  if [ "$FSK" = btrfs ]; then
    VIEW="$SNAP${P#"$SV"}"
    return 0
  fi
  local opts=ro
  [ "$LVFS" = xfs ] && opts=ro,nouuid
  mkdir "$TMP/lvsnap"
  mount -t "$LVFS" -o "$opts" "/dev/$LVSNAP" "$TMP/lvsnap"
  LVMNT=$TMP/lvsnap
  if [ "$LVTOP" = / ]; then VIEW="$LVMNT$P"; else VIEW="$LVMNT${P#"$LVTOP"}"; fi
}
# tar exits 1 when a file changed while read: expected for a live tree, not an error.
tar_tree() {
  local rc=0
  tar -C "$1" --exclude='./.corral-snap-*' --warning=no-file-changed --warning=no-file-removed \
    --warning=no-file-ignored -cf - . || rc=$?
  [ "$rc" -le 1 ]
}

# Debian links only some PostgreSQL client tools into /usr/bin (pg_wrapper); the rest live per version.
pgbin() {
  command -v "$1" 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n1
}
pg_env() {
  [ -n "$CORRAL_HOST" ] && export PGHOST=$CORRAL_HOST
  [ -n "$CORRAL_PORT" ] && export PGPORT=$CORRAL_PORT
  [ -n "$CORRAL_USER" ] && export PGUSER=$CORRAL_USER
  export PGDATABASE=${CORRAL_DB:-postgres}
  [ -n "$CORRAL_SECRET" ] && export PGPASSWORD=$CORRAL_SECRET
  export PGAPPNAME=corral-snapshot PGCONNECT_TIMEOUT=10
}
my_env() {
  MYSQL=$(command -v mariadb || command -v mysql) || die "no mariadb/mysql client on the node"
  MYDUMP=$(command -v mariadb-dump || command -v mysqldump) || true
  MYCHECK=$(command -v mariadb-check || command -v mysqlcheck) || true
  MYADMIN=$(command -v mariadb-admin || command -v mysqladmin) || true
  local esc=${CORRAL_SECRET//\\/\\\\}
  esc=${esc//\"/\\\"}
  {
    echo '[client]'
    if [ -n "$CORRAL_USER" ]; then echo "user=$CORRAL_USER"; fi
    if [ -n "$CORRAL_SECRET" ]; then echo "password=\"$esc\""; fi
    case "$CORRAL_HOST" in
      /*) echo "socket=$CORRAL_HOST" ;;
      '') ;;
      *)
        echo "host=$CORRAL_HOST"
        if [ -n "$CORRAL_PORT" ]; then echo "port=$CORRAL_PORT"; fi
        ;;
    esac
  } >"$TMP/my.cnf"
  chmod 600 "$TMP/my.cnf"
  MYCNF=--defaults-extra-file=$TMP/my.cnf
}
run_stop() { if [ -n "$CORRAL_STOP" ]; then bash -c "$CORRAL_STOP"; fi; }
run_start() { if [ -n "$CORRAL_START" ]; then bash -c "$CORRAL_START"; fi; }

snap_files() {
  [ -d "$P" ] || die "no directory $P on the node"
  if fs_detect "$P"; then
    fs_take
    fs_open
    say "method $FSK-snapshot+tar"
    tar_tree "$VIEW" | gz
  else
    say "method tar"
    tar_tree "$P" | gz
  fi
  say "format tar"
}

snap_sqlite() {
  [ -f "$P" ] || die "no SQLite database at $P on the node"
  local name
  name=$(basename "$P")
  mkdir "$TMP/out"
  local t0
  t0=$(now_ms)
  if command -v sqlite3 >/dev/null 2>&1; then
    sqlite3 "$P" ".timeout 10000" ".backup $TMP/backup.db"
  else
    python3 -c 'import sqlite3,sys; s=sqlite3.connect(sys.argv[1], timeout=10); d=sqlite3.connect(sys.argv[2]); s.backup(d); d.close()' "$P" "$TMP/backup.db"
  fi
  say "backupms $(( $(now_ms) - t0 ))"
  mv "$TMP/backup.db" "$TMP/out/$name"
  say "method sqlite-backup"
  tar -C "$TMP/out" -cf - "$name" | gz
  say "format tar"
}

snap_pg() {
  pg_env
  local flushed t0
  # On btrfs or LVM, with the WAL inside the same snapshot and no tablespaces elsewhere, one atomic snapshot
  # of the volume is a crash-consistent copy (PostgreSQL manual §26.2): the server replays WAL at start,
  # and every commit flushed before the snapshot is in it. No lock, no backup mode.
  if fs_detect "$P" && [ ! -L "$P/pg_wal" ] && [ -z "$(ls -A "$P/pg_tblspc" 2>/dev/null)" ]; then
    flushed=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -c "SELECT pg_current_wal_flush_lsn()")
    t0=$(now_ms)
    fs_take
    # LVM suspends the origin device while it sets the snapshot up: that is the writers' stall.
    [ "$FSK" = lvm ] && say "stall $(($(now_ms) - t0))"
    say "pgflushed $flushed"
    say "method $FSK-snapshot"
    fs_open
    tar_tree "$VIEW" | gz
    say "format tar"
    return 0
  fi
  local basebackup
  basebackup=$(pgbin pg_basebackup)
  [ -n "$basebackup" ] || die "pg_basebackup is not installed on the node"
  psql -X -q -A -t -v ON_ERROR_STOP=1 -c "SELECT pg_create_physical_replication_slot('corral_$CORRAL_ID', true, false)" >/dev/null
  SLOT=corral_$CORRAL_ID
  say "method pg_basebackup"
  "$basebackup" -D - -Ft -X fetch -c fast -v -l "corral $CORRAL_ID" | gz
  say "format tar"
}

# One mariadb client session kept open (the read lock belongs to it and dies with it).
my_q() {
  local marker="__corral_$RANDOM$RANDOM"
  printf '%s;\nSELECT "%s";\n' "$1" "$marker" >&"${DB[1]}"
  local line
  while IFS= read -r -t 300 line <&"${DB[0]}"; do
    [ "$line" = "$marker" ] && return 0
    printf '%s\n' "$line"
  done
  die "the database session stopped answering during: $1"
}
snap_mysql() {
  my_env
  if fs_detect "$P"; then
    coproc DB { "$MYSQL" "$MYCNF" -N -B --unbuffered 2>&1; }
    local t0 t1 pos
    t0=$(now_ms)
    my_q "FLUSH TABLES WITH READ LOCK" >/dev/null
    pos=$(my_q "SHOW MASTER STATUS")
    fs_take
    my_q "UNLOCK TABLES" >/dev/null
    t1=$(now_ms)
    eval "exec ${DB[1]}>&-"
    wait "$DB_PID" 2>/dev/null || true
    say "stall $((t1 - t0))"
    set -- $pos
    [ $# -ge 2 ] && say "binlog $1 $2"
    say "method flush-lock+$FSK-snapshot"
    fs_open
    tar_tree "$VIEW" | gz
    say "format tar"
  else
    [ -n "$MYDUMP" ] || die "no mariadb-dump/mysqldump on the node"
    local logbin
    logbin=$("$MYSQL" "$MYCNF" -N -B -e 'SELECT @@log_bin')
    say "method mariadb-dump"
    if [ "$logbin" = 1 ]; then
      # --master-data=2 writes the binlog position as a comment near the top; sed reports it and stops
      # reading (tee -p carries on to gzip).
      "$MYDUMP" "$MYCNF" --single-transaction --all-databases --routines --events --triggers --master-data=2 |
        tee -p >(sed -n "/CHANGE MASTER TO/{s/.*MASTER_LOG_FILE='\([^']*\)', *MASTER_LOG_POS=\([0-9]*\).*/CORRAL binlog \1 \2/p;q}" >&2) |
        gz
    else
      "$MYDUMP" "$MYCNF" --single-transaction --all-databases --routines --events --triggers | gz
    fi
    say "format sql"
  fi
}

# Restore of a tree: move the current data aside, lay the archive, give it the target's owner.
lay_tree() {
  local own mode
  if [ -e "$P" ]; then own=$(stat -c %u:%g "$P"); mode=$(stat -c %a "$P"); else own=$(stat -c %u:%g "$(dirname "$P")"); mode=700; fi
  run_stop
  say "step stopped"
  if [ -e "$P" ]; then mv "$P" "$OLD"; SWAPPED=1; fi
  mkdir -m "$mode" "$P"
  gunz | tar -C "$P" -xf -
  chown -R "$own" "$P"
  # A file-system snapshot holds the source's postmaster.pid, naming a process that may run here too.
  if [ "$CORRAL_KIND" = postgresql ]; then rm -f "$P/postmaster.pid" "$P/postmaster.opts"; fi
  say "step laid"
  run_start
  say "step started"
}
wait_for() {
  local i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -ge $((CORRAL_WAIT * 2)) ] && die "the database did not answer within $CORRAL_WAIT s after start"
    sleep 0.5
  done
}

rest_files() {
  lay_tree
  DONE=1
  rm -rf "$OLD"
}
rest_sqlite() {
  local dir name own
  dir=$(dirname "$P")
  name=$(basename "$P")
  mkdir "$TMP/in"
  gunz | tar -C "$TMP/in" -xf -
  local got
  got=$(ls "$TMP/in")
  [ -f "$TMP/in/$got" ] || die "the archive holds no database file"
  local check
  check=$(sqlite3 "$TMP/in/$got" 'PRAGMA integrity_check' 2>&1 || true)
  [ "$check" = ok ] || die "PRAGMA integrity_check of the snapshot: $check"
  own=$( [ -e "$P" ] && stat -c %u:%g "$P" || stat -c %u:%g "$dir")
  run_stop
  say "step stopped"
  if [ -e "$P" ]; then mv "$P" "$OLD"; SWAPPED=1; fi
  rm -f "$P-wal" "$P-shm" "$P-journal"
  mv "$TMP/in/$got" "$P"
  chown "$own" "$P"
  say "step laid"
  run_start
  say "step started"
  check=$(sqlite3 "$P" 'PRAGMA integrity_check' 2>&1 || true)
  [ "$check" = ok ] || die "PRAGMA integrity_check after restore: $check"
  say "check PRAGMA integrity_check: ok"
  DONE=1
  rm -f "$OLD"
}
rest_pg() {
  pg_env
  lay_tree
  wait_for "$(pgbin pg_isready)" -q
  local out amcheck
  amcheck=$(pgbin pg_amcheck)
  [ -n "$amcheck" ] || die "pg_amcheck is not installed on the node"
  out=$("$amcheck" --all --heapallindexed --install-missing 2>&1) || die "pg_amcheck reported problems: $(printf '%s' "$out" | head -c 2000)"
  say "check pg_amcheck --all --heapallindexed: ok"
  DONE=1
  rm -rf "$OLD"
}
rest_mysql() {
  my_env
  if [ "$CORRAL_FORMAT" = sql ]; then
    wait_for "$MYADMIN" "$MYCNF" ping
    say "step loading the dump into the running server"
    gunz | "$MYSQL" "$MYCNF"
    say "step laid"
  else
    lay_tree
    wait_for "$MYADMIN" "$MYCNF" ping
  fi
  [ -n "$MYCHECK" ] || die "no mariadb-check/mysqlcheck on the node"
  local out
  out=$("$MYCHECK" "$MYCNF" --all-databases 2>&1) || die "mysqlcheck failed: $(printf '%s' "$out" | head -c 2000)"
  if printf '%s' "$out" | grep -qiE '^(error|warning)|corrupt'; then die "mysqlcheck: $(printf '%s' "$out" | grep -iE 'error|corrupt' | head -c 2000)"; fi
  say "check mysqlcheck --all-databases: ok"
  DONE=1
  rm -rf "$OLD"
}

case "$op:$CORRAL_KIND" in
  snapshot:files) snap_files ;;
  snapshot:sqlite) snap_sqlite ;;
  snapshot:postgresql) snap_pg ;;
  snapshot:mysql) snap_mysql ;;
  restore:files) rest_files ;;
  restore:sqlite) rest_sqlite ;;
  restore:postgresql) rest_pg ;;
  restore:mysql) rest_mysql ;;
  *) die "unknown operation $op:$CORRAL_KIND" ;;
esac
say "done"
