/*
 * store_sqlite_migrations.c — the schema of the SQLite backend, as numbered
 * migrations, and the code that applies them (see store_sqlite.h).
 *
 * store_sqlite_migrations[i] is the SQL of schema version i+1; the list is
 * append-only. store_sqlite_migrate() reads the version, refuses a newer or
 * a foreign database, and runs the missing migrations, all inside one
 * BEGIN IMMEDIATE transaction: a failure leaves the file as it was, and two
 * processes opening one file cannot both migrate it. docs/storage.md
 * documents every table and column.
 */
#include "store_sqlite.h"

#include <sqlite3.h>

/* --- migrations ---------------------------------------------------------------------- */

const char *const store_sqlite_migrations[] = {
/* 1: the first schema. Times are INTEGER microseconds since the epoch, UTC.
 * Everything about a visit hangs off visits with ON DELETE CASCADE, so
 * deleting a client's visits erases every row about them. */
"CREATE TABLE schema_version ("
"  version    INTEGER PRIMARY KEY,"
"  applied_at INTEGER NOT NULL"
");"
"CREATE TABLE visits ("
"  visit_id       TEXT PRIMARY KEY NOT NULL,"
"  therapist_code TEXT NOT NULL,"
"  client_code    TEXT NOT NULL,"
"  modality       TEXT NOT NULL CHECK (modality IN ('video','in_person')),"
"  state          TEXT NOT NULL DEFAULT 'created'"
"                 CHECK (state IN ('created','waiting','live','ended','closed')),"
"  created_at     INTEGER NOT NULL,"
"  admitted_at    INTEGER,"
"  ended_at       INTEGER,"
"  closed_at      INTEGER"
");"
"CREATE INDEX visits_by_client ON visits(client_code);"
"CREATE INDEX visits_by_therapist ON visits(therapist_code);"
"CREATE TABLE participants ("
"  id               INTEGER PRIMARY KEY,"
"  visit_id         TEXT NOT NULL REFERENCES visits(visit_id) ON DELETE CASCADE,"
"  role             TEXT NOT NULL CHECK (role IN ('therapist','client','observer')),"
"  code             TEXT,"
"  research_consent INTEGER NOT NULL CHECK (research_consent IN (0,1)),"
"  language         TEXT,"
"  joined_at        INTEGER NOT NULL"
");"
"CREATE INDEX participants_by_visit ON participants(visit_id);"
"CREATE TABLE pulses ("
"  pulse_id           TEXT PRIMARY KEY NOT NULL,"
"  visit_id           TEXT NOT NULL REFERENCES visits(visit_id) ON DELETE CASCADE,"
"  role               TEXT NOT NULL CHECK (role IN ('therapist','client')),"
"  kind               TEXT NOT NULL CHECK (kind IN ('in_session','end')),"
"  instrument_id      TEXT NOT NULL,"
"  instrument_version TEXT NOT NULL,"
"  language           TEXT NOT NULL,"
"  \"trigger\"        TEXT NOT NULL,"
"  delivered_via      TEXT,"
"  created_at         INTEGER NOT NULL,"
"  expires_at         INTEGER,"
"  status             TEXT NOT NULL DEFAULT 'pending' CHECK (status IN"
"                     ('pending','delivered','partial','answered','dismissed','expired')),"
"  status_at          INTEGER NOT NULL"
");"
"CREATE INDEX pulses_by_visit ON pulses(visit_id, instrument_id);"
"CREATE TABLE answers ("
"  pulse_id          TEXT PRIMARY KEY NOT NULL"
"                    REFERENCES pulses(pulse_id) ON DELETE CASCADE,"
"  final             INTEGER NOT NULL DEFAULT 0 CHECK (final IN (0,1)),"
"  first_at          INTEGER NOT NULL,"
"  answered_at       INTEGER NOT NULL,"
"  time_to_answer_ms INTEGER,"
"  research_consent  INTEGER CHECK (research_consent IN (0,1)),"
"  dismissed         INTEGER NOT NULL DEFAULT 0 CHECK (dismissed IN (0,1)),"
"  CHECK (final + dismissed <= 1)"
");"
"CREATE TABLE answer_items ("
"  pulse_id TEXT NOT NULL REFERENCES answers(pulse_id) ON DELETE CASCADE,"
"  item_id  TEXT NOT NULL,"
"  value    REAL NOT NULL,"
"  PRIMARY KEY (pulse_id, item_id)"
") WITHOUT ROWID;"
"CREATE TABLE scores ("
"  pulse_id TEXT NOT NULL REFERENCES answers(pulse_id) ON DELETE CASCADE,"
"  name     TEXT NOT NULL,"
"  value    REAL NOT NULL,"
"  PRIMARY KEY (pulse_id, name)"
") WITHOUT ROWID;"
"CREATE TABLE alerts ("
"  id           INTEGER PRIMARY KEY,"
"  visit_id     TEXT NOT NULL REFERENCES visits(visit_id) ON DELETE CASCADE,"
"  pulse_id     TEXT REFERENCES pulses(pulse_id) ON DELETE CASCADE,"
"  rule         TEXT NOT NULL CHECK (rule IN ('below_cutoff','drop')),"
"  score_name   TEXT NOT NULL,"
"  score        REAL NOT NULL,"
"  threshold    REAL NOT NULL,"
"  quality_json TEXT,"
"  created_at   INTEGER NOT NULL"
");"
"CREATE INDEX alerts_by_visit ON alerts(visit_id);"
"CREATE INDEX alerts_by_pulse ON alerts(pulse_id);"
"CREATE TABLE events ("
"  id          INTEGER PRIMARY KEY,"
"  visit_id    TEXT REFERENCES visits(visit_id) ON DELETE CASCADE,"
"  kind        TEXT NOT NULL,"
"  detail_json TEXT,"
"  at          INTEGER NOT NULL"
");"
"CREATE INDEX events_by_visit ON events(visit_id, at);"
"CREATE TABLE quality_samples ("
"  id           INTEGER PRIMARY KEY,"
"  visit_id     TEXT NOT NULL REFERENCES visits(visit_id) ON DELETE CASCADE,"
"  leg          TEXT NOT NULL,"
"  medium       TEXT NOT NULL,"
"  at           INTEGER NOT NULL,"
"  metrics_json TEXT NOT NULL"
");"
"CREATE INDEX quality_samples_by_visit ON quality_samples(visit_id, at);"
/* A final (or dismissed) answer never changes; scores exist only for final
 * answers. The code checks this too; the triggers make it a property of
 * the data. Deletion (erasure, retention) is not restricted. */
"CREATE TRIGGER answers_stay_final BEFORE UPDATE ON answers"
"  WHEN OLD.final = 1 OR OLD.dismissed = 1"
"  BEGIN SELECT RAISE(ABORT, 'the answer is final'); END;"
"CREATE TRIGGER answer_items_stay_final_insert BEFORE INSERT ON answer_items"
"  WHEN EXISTS (SELECT 1 FROM answers WHERE pulse_id = NEW.pulse_id"
"               AND (final = 1 OR dismissed = 1))"
"  BEGIN SELECT RAISE(ABORT, 'the answer is final'); END;"
"CREATE TRIGGER answer_items_stay_final_update BEFORE UPDATE ON answer_items"
"  WHEN EXISTS (SELECT 1 FROM answers WHERE pulse_id = OLD.pulse_id"
"               AND (final = 1 OR dismissed = 1))"
"  BEGIN SELECT RAISE(ABORT, 'the answer is final'); END;"
"CREATE TRIGGER scores_need_final BEFORE INSERT ON scores"
"  WHEN NOT EXISTS (SELECT 1 FROM answers WHERE pulse_id = NEW.pulse_id AND final = 1)"
"  BEGIN SELECT RAISE(ABORT, 'scores are stored only with a final answer'); END;"
"PRAGMA application_id = 1095781459;",          /* STORE_SQLITE_APPLICATION_ID */

/* 2: connection quality next to the answers. A pulse keeps the quality
 * context it was delivered in (NULL until set, and in rows from version
 * 1); incidents are the notable stretches of a leg (freezes, loss bursts,
 * ...), open (ended_at NULL) or closed, erased with their visit. */
"ALTER TABLE pulses ADD COLUMN quality_json TEXT;"
"CREATE TABLE incidents ("
"  id          INTEGER PRIMARY KEY,"
"  visit_id    TEXT NOT NULL REFERENCES visits(visit_id) ON DELETE CASCADE,"
"  leg         TEXT NOT NULL"
"              CHECK (leg IN ('client_up','client_down','therapist_up','therapist_down')),"
"  medium      TEXT NOT NULL CHECK (medium IN ('audio','video','any')),"
"  kind        TEXT NOT NULL CHECK (kind IN"
"              ('freeze','loss_burst','high_rtt','stall','reconnect','slow_link')),"
"  started_at  INTEGER NOT NULL,"
"  ended_at    INTEGER,"
"  detail_json TEXT,"
"  CHECK (ended_at IS NULL OR ended_at >= started_at)"
");"
"CREATE INDEX incidents_by_visit ON incidents(visit_id, started_at);",

/* 3: reports. One summary row per ended visit, recomputed from the base
 * tables by store_visit_summarize() (when the visit ends, when its end
 * answers arrive, when it closes), so that the reports read one narrow
 * table instead of joining pulses, answers, scores and JSON contexts for
 * thousands of visits; erased with its visit. Indexes for the report
 * filters (date range, therapist, client, modality). */
"CREATE TABLE visit_summaries ("
"  visit_id             TEXT PRIMARY KEY NOT NULL"
"                       REFERENCES visits(visit_id) ON DELETE CASCADE,"
"  therapist_code       TEXT NOT NULL,"
"  client_code          TEXT NOT NULL,"
"  modality             TEXT NOT NULL CHECK (modality IN ('video','in_person')),"
"  visit_number         INTEGER NOT NULL CHECK (visit_number >= 1),"
"  created_at           INTEGER NOT NULL,"
"  ended_at             INTEGER,"
"  research_consent     INTEGER NOT NULL CHECK (research_consent IN (0,1)),"
"  client_instrument    TEXT,"
"  client_total         REAL,"
"  therapist_instrument TEXT,"
"  therapist_total      REAL,"
"  mean_mos             REAL,"
"  loss_pct             REAL,"
"  freeze_s             REAL,"
"  incidents            INTEGER NOT NULL DEFAULT 0,"
"  alerts               INTEGER NOT NULL DEFAULT 0"
");"
"CREATE INDEX visit_summaries_by_created ON visit_summaries(created_at);"
"CREATE INDEX visit_summaries_by_therapist ON visit_summaries(therapist_code, created_at);"
"CREATE INDEX visit_summaries_by_client ON visit_summaries(client_code, visit_number);"
"CREATE INDEX visit_summaries_by_modality ON visit_summaries(modality, created_at);"
"CREATE INDEX visits_by_created ON visits(created_at);"
"CREATE INDEX visits_by_modality ON visits(modality, created_at);",

/* 4: why a visit ended (PROTOCOL.md v1.1 `end_reason`). Before this
 * version only the therapist's `end` ended a visit, so ended rows get
 * "therapist". The partial index finds the visits a crash left open
 * (the start-up repair) without scanning every closed one. */
"ALTER TABLE visits ADD COLUMN end_reason TEXT CHECK (end_reason IS NULL OR end_reason IN"
"  ('therapist','idle','max_duration','shutdown','interrupted'));"
"UPDATE visits SET end_reason = 'therapist' WHERE ended_at IS NOT NULL;"
"CREATE INDEX visits_open ON visits(state) WHERE state <> 'closed';",

/* 5: many instances (PROTOCOL.md v1.1 "Scale"): the instance a visit ran
 * on, the hash of its invite while it is open (a join reaching another
 * instance is sent to this one), and the instances with their public
 * servers. Visits from before have no instance: the start-up repair
 * treats them as its own. */
"ALTER TABLE visits ADD COLUMN instance_id TEXT;"
"ALTER TABLE visits ADD COLUMN invite_sha256 TEXT;"
"CREATE INDEX visits_by_invite ON visits(invite_sha256) WHERE invite_sha256 IS NOT NULL;"
"CREATE TABLE instances ("
"  instance_id    TEXT PRIMARY KEY NOT NULL,"
"  public_servers TEXT NOT NULL DEFAULT '[]',"
"  started_at     INTEGER NOT NULL,"
"  seen_at        INTEGER NOT NULL"
");",

/* 6: good and poor calls (PROTOCOL.md v1.1 "Research"): whether the
 * visit's video was poor by the published thresholds (docs/metrics.md),
 * from its end pulse context; NULL for summaries written before (their
 * contexts have no video_class), in-person visits and visits without
 * measured video. */
"ALTER TABLE visit_summaries ADD COLUMN video_class TEXT"
"  CHECK (video_class IS NULL OR video_class IN ('good','poor'));",
};
const int store_sqlite_n_migrations = G_N_ELEMENTS(store_sqlite_migrations);
G_STATIC_ASSERT(G_N_ELEMENTS(store_sqlite_migrations) == STORE_SCHEMA_VERSION);
G_STATIC_ASSERT(STORE_SQLITE_APPLICATION_ID == 1095781459);

/* One-row, one-column query for an integer; -1 with err on failure. */
static int query_int(sqlite3 *db, const char *sql, const char *bind1,
		sqlite3_int64 *out, int *src) {
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if(rc == SQLITE_OK) {
		if(bind1)
			sqlite3_bind_text(s, 1, bind1, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
		if(rc == SQLITE_ROW) {
			*out = sqlite3_column_int64(s, 0);
			rc = SQLITE_OK;
		} else if(rc == SQLITE_DONE) {
			*out = 0;
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(s);
	*src = rc;
	return rc == SQLITE_OK ? 0 : -1;
}

int store_sqlite_migrate(sqlite3 *db, const char *const *migrations, int n,
		int *sqlite_rc, char *err, size_t errlen) {
	int ignored;
	if(sqlite_rc == NULL)
		sqlite_rc = &ignored;
	*sqlite_rc = SQLITE_OK;
	int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if(rc != SQLITE_OK) {
		*sqlite_rc = rc;
		g_snprintf(err, errlen, "could not start the migration: %s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_int64 has_table = 0, others = 0, app_id = 0, version = 0;
	if(query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
			"schema_version", &has_table, sqlite_rc) != 0
			|| query_int(db, "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
				NULL, &others, sqlite_rc) != 0
			|| query_int(db, "PRAGMA application_id", NULL, &app_id, sqlite_rc) != 0
			|| (has_table && query_int(db, "SELECT coalesce(max(version), 0) FROM schema_version",
				NULL, &version, sqlite_rc) != 0)) {
		g_snprintf(err, errlen, "has an unreadable schema version: %s", sqlite3_errmsg(db));
		goto refuse;
	}
	if((app_id != 0 && app_id != STORE_SQLITE_APPLICATION_ID) || (!has_table && others > 0)) {
		g_snprintf(err, errlen, "is a database of another application "
			"(no Alliance Pulse schema_version); refusing to change it");
		goto refuse;
	}
	if(version > n) {
		g_snprintf(err, errlen, "has schema version %" G_GINT64_FORMAT ", newer than this "
			"build knows (%d); refusing to open it: upgrade Alliance Pulse or restore "
			"a backup made by this version", (gint64)version, n);
		goto refuse;
	}
	for(int v = (int)version + 1; v <= n; v++) {
		char *emsg = NULL;
		rc = sqlite3_exec(db, migrations[v - 1], NULL, NULL, &emsg);
		if(rc == SQLITE_OK) {
			sqlite3_stmt *s = NULL;
			rc = sqlite3_prepare_v2(db,
				"INSERT INTO schema_version(version, applied_at) VALUES (?1, ?2)", -1, &s, NULL);
			if(rc == SQLITE_OK) {
				sqlite3_bind_int(s, 1, v);
				sqlite3_bind_int64(s, 2, g_get_real_time());
				rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
			}
			sqlite3_finalize(s);
		}
		if(rc != SQLITE_OK) {
			*sqlite_rc = rc;
			g_snprintf(err, errlen, "could not be migrated to version %d: %s", v,
				emsg ? emsg : sqlite3_errmsg(db));
			sqlite3_free(emsg);
			goto refuse;
		}
	}
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if(rc != SQLITE_OK) {
		*sqlite_rc = rc;
		g_snprintf(err, errlen, "could not commit the migration: %s", sqlite3_errmsg(db));
		goto refuse;
	}
	return (int)version;
refuse:
	if(!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}
