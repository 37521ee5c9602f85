// The job store: a queue of writes in front of one SQLite connection, drained by one thread, one
// transaction per drain.
#include "store/job_store.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <set>
#include <system_error>
#include <type_traits>
#include <utility>

namespace photon::store {
namespace {

// "PHOT": PRAGMA application_id of a photond job database.
constexpr std::int32_t kApplicationId = 0x50484F54;

// kMigrations[v] takes the schema from version v to v + 1; the file's version is user_version.
// Job definitions are upserted, never REPLACEd: a REPLACE deletes the row, and the delete would
// cascade to the job's runs.
constexpr std::array<const char*, 3> kMigrations = {
    R"sql(
CREATE TABLE jobs (
  id TEXT PRIMARY KEY NOT NULL,
  method TEXT NOT NULL,
  args_json TEXT NOT NULL,
  cron TEXT NOT NULL,
  timezone TEXT NOT NULL,
  catch_up TEXT NOT NULL,
  overlap TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  last_run_ms INTEGER,
  next_run_ms INTEGER,
  run_count INTEGER NOT NULL,
  last_status TEXT NOT NULL,
  last_error TEXT NOT NULL,
  declared INTEGER NOT NULL
);
CREATE TABLE runs (
  run_id INTEGER PRIMARY KEY,
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  triggered_by TEXT NOT NULL,
  scheduled_for_ms INTEGER NOT NULL,
  started_at_ms INTEGER NOT NULL,
  ended_at_ms INTEGER,
  status TEXT NOT NULL,
  error TEXT NOT NULL
);
CREATE INDEX runs_by_job ON runs(job_id, run_id);
-- key 'last_run_id': the highest run id ever saved (runs are trimmed and deleted, ids never reused)
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
)sql",
    // 2: a run cut short by a crash is marked interrupted, with no end; version 1 recorded it as
    // ended when it started, and did not keep when it was found.
    R"sql(
ALTER TABLE runs ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN found_at_ms INTEGER;
UPDATE runs SET interrupted = 1, ended_at_ms = NULL
  WHERE status = 'failed' AND error = 'the daemon stopped while it ran' AND ended_at_ms = started_at_ms;
)sql",
    // 3: the messages of persistent channels (--persist), in publish order across runs.
    R"sql(
CREATE TABLE events (
  seq INTEGER PRIMARY KEY,
  event_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  message TEXT NOT NULL,
  at_ms INTEGER NOT NULL
);
CREATE INDEX events_by_channel ON events(channel, seq);
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(kMigrations.size());

constexpr const char* kUpsertJob = R"sql(
INSERT INTO jobs (id, method, args_json, cron, timezone, catch_up, overlap, created_at_ms,
                  created_by, last_run_ms, next_run_ms, run_count, last_status, last_error, declared)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
ON CONFLICT (id) DO UPDATE SET
  method = excluded.method, args_json = excluded.args_json, cron = excluded.cron,
  timezone = excluded.timezone, catch_up = excluded.catch_up, overlap = excluded.overlap,
  created_at_ms = excluded.created_at_ms, created_by = excluded.created_by,
  last_run_ms = excluded.last_run_ms, next_run_ms = excluded.next_run_ms,
  run_count = excluded.run_count, last_status = excluded.last_status,
  last_error = excluded.last_error, declared = excluded.declared
)sql";

constexpr const char* kDeleteJob = "DELETE FROM jobs WHERE id = ?1";

// Inserts nothing when the job is gone (deleted after the run started): skipped, not an error.
constexpr const char* kUpsertRun = R"sql(
INSERT INTO runs (run_id, job_id, triggered_by, scheduled_for_ms, started_at_ms, ended_at_ms,
                  status, error, interrupted, found_at_ms)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?2)
ON CONFLICT (run_id) DO UPDATE SET
  job_id = excluded.job_id, triggered_by = excluded.triggered_by,
  scheduled_for_ms = excluded.scheduled_for_ms, started_at_ms = excluded.started_at_ms,
  ended_at_ms = excluded.ended_at_ms, status = excluded.status, error = excluded.error,
  interrupted = excluded.interrupted, found_at_ms = excluded.found_at_ms
)sql";

// Deletes the job's runs older than its newest ?2 (nothing when it has no more than ?2).
constexpr const char* kTrimRuns = R"sql(
DELETE FROM runs WHERE job_id = ?1 AND run_id <=
  (SELECT run_id FROM runs WHERE job_id = ?1 ORDER BY run_id DESC LIMIT 1 OFFSET ?2)
)sql";

constexpr const char* kRaiseLastRunId = R"sql(
INSERT INTO meta (key, value) VALUES ('last_run_id', ?1)
ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)
)sql";

constexpr const char* kInsertEvent =
    "INSERT INTO events (event_id, channel, message, at_ms) VALUES (?1, ?2, ?3, ?4)";

// Deletes the channel's events older than its newest ?2; then, in all, those older than the
// newest ?1 (nothing where there are no more).
constexpr const char* kTrimChannelEvents = R"sql(
DELETE FROM events WHERE channel = ?1 AND seq <=
  (SELECT seq FROM events WHERE channel = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)
)sql";
constexpr const char* kTrimEvents = R"sql(
DELETE FROM events WHERE seq <= (SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?1)
)sql";

constexpr const char* kSelectEvents =
    "SELECT seq, event_id, channel, message, at_ms FROM events ORDER BY seq";
constexpr const char* kDeleteEvent = "DELETE FROM events WHERE seq = ?1";

constexpr const char* kSelectJobs = R"sql(
SELECT id, method, args_json, cron, timezone, catch_up, overlap, created_at_ms, created_by,
       last_run_ms, next_run_ms, run_count, last_status, last_error, declared
FROM jobs ORDER BY id
)sql";

constexpr const char* kSelectRuns = R"sql(
SELECT run_id, job_id, triggered_by, scheduled_for_ms, started_at_ms, ended_at_ms, status, error,
       interrupted, found_at_ms
FROM (SELECT *, row_number() OVER (PARTITION BY job_id ORDER BY run_id DESC) AS newness FROM runs)
WHERE newness <= ?1 ORDER BY job_id, run_id
)sql";

constexpr const char* kSelectLastRunId = R"sql(
SELECT max(coalesce((SELECT value FROM meta WHERE key = 'last_run_id'), 0),
           coalesce((SELECT max(run_id) FROM runs), 0))
)sql";

struct ConnectionCloser {
  void operator()(sqlite3* connection) const { sqlite3_close_v2(connection); }
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* statement) const { sqlite3_finalize(statement); }
};
using Connection = std::unique_ptr<sqlite3, ConnectionCloser>;
using Statement = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

[[noreturn]] void fail(sqlite3* connection, const std::string& what) {
  throw StoreError(what + ": " + sqlite3_errmsg(connection));
}

void exec(sqlite3* connection, const char* sql) {
  if (sqlite3_exec(connection, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    throw StoreError(sqlite3_errmsg(connection));
  }
}

Statement prepare(sqlite3* connection, const char* sql, unsigned flags) {
  sqlite3_stmt* statement = nullptr;
  if (sqlite3_prepare_v3(connection, sql, -1, flags, &statement, nullptr) != SQLITE_OK) {
    throw StoreError(sqlite3_errmsg(connection));
  }
  return Statement(statement);
}

void bind(sqlite3_stmt* statement, int index, const std::string& value) {
  if (sqlite3_bind_text64(statement, index, value.data(), value.size(), SQLITE_STATIC,
                          SQLITE_UTF8) != SQLITE_OK) {
    fail(sqlite3_db_handle(statement), "cannot bind a text");
  }
}

void bind(sqlite3_stmt* statement, int index, std::int64_t value) {
  if (sqlite3_bind_int64(statement, index, value) != SQLITE_OK) {
    fail(sqlite3_db_handle(statement), "cannot bind a number");
  }
}

void bind(sqlite3_stmt* statement, int index, const std::optional<std::int64_t>& value) {
  if (value) {
    bind(statement, index, *value);
  } else if (sqlite3_bind_null(statement, index) != SQLITE_OK) {
    fail(sqlite3_db_handle(statement), "cannot bind a null");
  }
}

// SQLite integers are signed 64-bit: a count past INT64_MAX wraps and comes back intact (run ids
// stay below it, since they are compared).
std::int64_t to_sql(std::uint64_t value) { return static_cast<std::int64_t>(value); }
std::uint64_t from_sql(std::int64_t value) { return static_cast<std::uint64_t>(value); }
std::int64_t to_sql_limit(std::size_t value) {
  return static_cast<std::int64_t>(
      std::min<std::uint64_t>(value, std::numeric_limits<std::int64_t>::max()));
}

// Resets a statement however its use ends (a persistent statement is reused; an unreset one holds
// a read lock).
class Use {
 public:
  explicit Use(sqlite3_stmt* statement) : statement_(statement) {}
  ~Use() { sqlite3_reset(statement_); }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

  // Binds `values` to ?1, ?2, ... in order.
  template <typename... Values>
  Use& with(const Values&... values) {
    int index = 0;
    (bind(statement_, ++index, values), ...);
    return *this;
  }
  // Runs a statement that returns no rows.
  void done(const char* what) {
    if (sqlite3_step(statement_) != SQLITE_DONE) fail(sqlite3_db_handle(statement_), what);
  }
  // Steps to the next row: false at the end.
  bool row(const char* what) {
    const int status = sqlite3_step(statement_);
    if (status == SQLITE_ROW) return true;
    if (status != SQLITE_DONE) fail(sqlite3_db_handle(statement_), what);
    return false;
  }
  std::string text(int column) const {
    const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(statement_, column));
    return data == nullptr ? std::string()
                           : std::string(data, sqlite3_column_bytes(statement_, column));
  }
  std::int64_t integer(int column) const { return sqlite3_column_int64(statement_, column); }
  std::optional<std::int64_t> optional_integer(int column) const {
    if (sqlite3_column_type(statement_, column) == SQLITE_NULL) return std::nullopt;
    return integer(column);
  }

 private:
  sqlite3_stmt* statement_;
};

// The first column of the first row of `sql`, as an integer or a text.
template <typename T>
T query(sqlite3* connection, const char* sql) {
  const Statement statement = prepare(connection, sql, 0);
  Use use(statement.get());
  if (!use.row(sql)) throw StoreError(std::string(sql) + " returned no row");
  if constexpr (std::is_same_v<T, std::string>) {
    return use.text(0);
  } else {
    return use.integer(0);
  }
}

// Creates the file 0600 if it does not exist, so that SQLite (which gives the -wal and -shm files
// the database's mode) never makes it readable by others, whatever the umask.
void create_private(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw StoreError("cannot open job database " + file.string() + ": " +
                     std::generic_category().message(errno));
  }
  ::close(fd);
}

// SQLite's unix VFS with one change: an absolute file name is its own full pathname. The stock
// one resolves every symlink in it (to name the -wal and -shm files after the real path), which
// would turn /proc/self/fd/N/NAME.db back into the directory's path and resolve that again; kept
// as given, the database and its -wal and -shm files are reached through the checked directory's
// descriptor. The unix VFS opens each of them with O_NOFOLLOW.
sqlite3_vfs* unix_vfs = nullptr;

int keep_absolute_path(sqlite3_vfs* vfs, const char* name, int out_size, char* out) {
  if (name[0] != '/') return unix_vfs->xFullPathname(vfs, name, out_size, out);
  const std::size_t length = std::strlen(name);
  if (length + 1 > static_cast<std::size_t>(out_size)) return SQLITE_CANTOPEN;
  std::memcpy(out, name, length + 1);
  return SQLITE_OK;
}

const char* path_keeping_vfs() {
  static const char* const registered = []() -> const char* {
    unix_vfs = sqlite3_vfs_find("unix");
    if (unix_vfs == nullptr) return nullptr;
    static sqlite3_vfs vfs = *unix_vfs;
    vfs.zName = "photon-unix-keep-path";
    vfs.xFullPathname = keep_absolute_path;
    if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK) return nullptr;
    return vfs.zName;
  }();
  if (registered == nullptr) throw StoreError("cannot register SQLite's file system layer");
  return registered;
}

// Runs `read`, naming the file in its error (a damaged page shows when it is read).
template <typename Read>
auto reading(const std::filesystem::path& file, Read read) {
  try {
    return read();
  } catch (const StoreError& error) {
    throw StoreError("job database " + file.string() + ": " + error.what());
  }
}

}  // namespace

// The connection and its prepared statements. Not thread-safe: the store serializes its use.
class JobStore::Database {
 public:
  // Opens `sqlite_name` (created beforehand) with `vfs` (null: the default); `file` names it in
  // errors.
  static std::unique_ptr<Database> open(const std::string& sqlite_name, const char* vfs,
                                        const std::filesystem::path& file,
                                        const JobStoreOptions& options) {
    sqlite3* raw = nullptr;
    const int status = sqlite3_open_v2(sqlite_name.c_str(), &raw,
                                       SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, vfs);
    Connection connection(raw);
    const std::string context = "job database " + file.string();
    if (status != SQLITE_OK) {
      if (!connection) throw StoreError(context + ": " + sqlite3_errstr(status));
      fail(connection.get(), context);
    }
    try {
      prepare_file(connection.get(), options);
      return std::unique_ptr<Database>(new Database(std::move(connection), options));
    } catch (const StoreError& error) {
      throw StoreError(context + ": " + error.what());
    }
  }

  // A durable transaction is synced to the device at commit. The pragma is set between
  // transactions (SQLite applies it when it is compiled, so it is executed, never kept prepared).
  void begin(bool durable) {
    if (durable) exec(connection_.get(), "PRAGMA synchronous = FULL");
    durable_ = durable;
    exec(connection_.get(), "BEGIN IMMEDIATE");
  }
  void commit() {
    exec(connection_.get(), "COMMIT");
    end_transaction();
  }
  void rollback() noexcept {
    // Some errors (a full disk, an I/O error) roll the transaction back by themselves.
    if (sqlite3_get_autocommit(connection_.get()) == 0) {
      sqlite3_exec(connection_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    end_transaction();
  }

  void save_job(const JobRecord& job) {
    Use(upsert_job_.get())
        .with(job.id, job.method, job.args_json, job.cron, job.timezone, job.catch_up, job.overlap,
              job.created_at_ms, job.created_by, job.last_run_ms, job.next_run_ms,
              to_sql(job.run_count), job.last_status, job.last_error,
              std::int64_t{job.declared ? 1 : 0})
        .done("cannot save a job");
  }
  void delete_job(const std::string& id) {
    Use(delete_job_.get()).with(id).done("cannot delete a job");
  }
  void save_run(const RunRecord& run) {
    Use(upsert_run_.get())
        .with(to_sql(run.run_id), run.job_id, run.trigger, run.scheduled_for_ms, run.started_at_ms,
              run.ended_at_ms, run.status, run.error, std::int64_t{run.interrupted ? 1 : 0},
              run.found_at_ms)
        .done("cannot save a run");
  }
  void trim_runs(const std::string& job_id) {
    Use(trim_runs_.get()).with(job_id, to_sql_limit(history_per_job_)).done("cannot trim runs");
  }
  void raise_last_run_id(std::uint64_t run_id) {
    Use(raise_last_run_id_.get()).with(to_sql(run_id)).done("cannot record the last run id");
  }
  void save_event(const EventRecord& event) {
    Use(insert_event_.get())
        .with(event.event_id, event.channel, event.message_json, event.at_ms)
        .done("cannot save a channel message");
  }
  void trim_events(const std::string& channel) {
    Use(trim_channel_events_.get())
        .with(channel, to_sql_limit(events_per_channel_))
        .done("cannot trim a channel's messages");
  }
  void trim_all_events() {
    Use(trim_events_.get()).with(to_sql_limit(events_in_all_)).done("cannot trim channel messages");
  }
  void delete_event(std::uint64_t seq) {
    Use(delete_event_.get()).with(to_sql(seq)).done("cannot delete a channel message");
  }

  std::vector<EventRecord> load_events() {
    const Statement statement = prepare(connection_.get(), kSelectEvents, 0);
    Use use(statement.get());
    std::vector<EventRecord> events;
    while (use.row("cannot read channel messages")) {
      EventRecord& event = events.emplace_back();
      event.seq = from_sql(use.integer(0));
      event.event_id = use.text(1);
      event.channel = use.text(2);
      event.message_json = use.text(3);
      event.at_ms = use.integer(4);
    }
    return events;
  }

  std::vector<JobRecord> load_jobs() {
    const Statement statement = prepare(connection_.get(), kSelectJobs, 0);
    Use use(statement.get());
    std::vector<JobRecord> jobs;
    while (use.row("cannot read jobs")) {
      JobRecord& job = jobs.emplace_back();
      job.id = use.text(0);
      job.method = use.text(1);
      job.args_json = use.text(2);
      job.cron = use.text(3);
      job.timezone = use.text(4);
      job.catch_up = use.text(5);
      job.overlap = use.text(6);
      job.created_at_ms = use.integer(7);
      job.created_by = use.text(8);
      job.last_run_ms = use.optional_integer(9);
      job.next_run_ms = use.optional_integer(10);
      job.run_count = from_sql(use.integer(11));
      job.last_status = use.text(12);
      job.last_error = use.text(13);
      job.declared = use.integer(14) != 0;
    }
    return jobs;
  }

  std::vector<RunRecord> load_runs(std::size_t per_job) {
    const Statement statement = prepare(connection_.get(), kSelectRuns, 0);
    Use use(statement.get());
    use.with(to_sql_limit(per_job));
    std::vector<RunRecord> runs;
    while (use.row("cannot read runs")) {
      RunRecord& run = runs.emplace_back();
      run.run_id = from_sql(use.integer(0));
      run.job_id = use.text(1);
      run.trigger = use.text(2);
      run.scheduled_for_ms = use.integer(3);
      run.started_at_ms = use.integer(4);
      run.ended_at_ms = use.optional_integer(5);
      run.status = use.text(6);
      run.error = use.text(7);
      run.interrupted = use.integer(8) != 0;
      run.found_at_ms = use.optional_integer(9);
    }
    return runs;
  }

  std::uint64_t last_run_id() {
    return from_sql(query<std::int64_t>(connection_.get(), kSelectLastRunId));
  }

 private:
  Database(Connection connection, const JobStoreOptions& options)
      : connection_(std::move(connection)),
        history_per_job_(options.history_per_job),
        events_per_channel_(options.events_per_channel),
        events_in_all_(options.events_in_all) {
    sqlite3* db = connection_.get();
    upsert_job_ = prepare(db, kUpsertJob, SQLITE_PREPARE_PERSISTENT);
    delete_job_ = prepare(db, kDeleteJob, SQLITE_PREPARE_PERSISTENT);
    upsert_run_ = prepare(db, kUpsertRun, SQLITE_PREPARE_PERSISTENT);
    trim_runs_ = prepare(db, kTrimRuns, SQLITE_PREPARE_PERSISTENT);
    raise_last_run_id_ = prepare(db, kRaiseLastRunId, SQLITE_PREPARE_PERSISTENT);
    insert_event_ = prepare(db, kInsertEvent, SQLITE_PREPARE_PERSISTENT);
    trim_channel_events_ = prepare(db, kTrimChannelEvents, SQLITE_PREPARE_PERSISTENT);
    trim_events_ = prepare(db, kTrimEvents, SQLITE_PREPARE_PERSISTENT);
    delete_event_ = prepare(db, kDeleteEvent, SQLITE_PREPARE_PERSISTENT);
  }

  // Checks that the file is photond's (or empty) before changing anything in it, then sets the
  // connection up and brings the schema to kSchemaVersion.
  static void prepare_file(sqlite3* db, const JobStoreOptions& options) {
    sqlite3_extended_result_codes(db, 1);
    const auto busy_ms = std::clamp<std::chrono::milliseconds::rep>(
        options.busy_timeout.count(), 0, std::numeric_limits<int>::max());
    sqlite3_busy_timeout(db, static_cast<int>(busy_ms));
    // The first read of the file: garbage fails here ("file is not a database").
    const auto application_id = query<std::int64_t>(db, "PRAGMA application_id");
    const auto version = query<std::int64_t>(db, "PRAGMA user_version");
    const bool empty = query<std::int64_t>(db, "SELECT count(*) FROM sqlite_schema") == 0;
    if (application_id != kApplicationId && !(application_id == 0 && version == 0 && empty)) {
      throw StoreError("not a photond job database (application_id " +
                       std::to_string(application_id) + ", " +
                       (empty ? "no tables" : "tables of another program") + ")");
    }
    if (version > kSchemaVersion) {
      throw StoreError("written by a newer photond (schema version " + std::to_string(version) +
                       ", this one knows up to " + std::to_string(kSchemaVersion) + ")");
    }
    const auto journal_mode = query<std::string>(db, "PRAGMA journal_mode = WAL");
    if (journal_mode != "wal") {
      throw StoreError("cannot use a write-ahead log (journal mode stays " + journal_mode + ")");
    }
    exec(db, "PRAGMA synchronous = NORMAL");
    exec(db, "PRAGMA foreign_keys = ON");
    // Statement journals and sorts in memory: once open, a write needs no new file descriptor, so
    // it cannot fail while the daemon's descriptors are all taken by connections.
    exec(db, "PRAGMA temp_store = MEMORY");
    migrate(db);
  }

  static void migrate(sqlite3* db) {
    exec(db, "BEGIN IMMEDIATE");
    try {
      for (auto version = query<std::int64_t>(db, "PRAGMA user_version"); version < kSchemaVersion;
           ++version) {
        exec(db, kMigrations.at(static_cast<std::size_t>(version)));
      }
      exec(db, ("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
      exec(db, ("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str());
      exec(db, "COMMIT");
    } catch (...) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }

  void end_transaction() noexcept {
    if (durable_) {
      sqlite3_exec(connection_.get(), "PRAGMA synchronous = NORMAL", nullptr, nullptr, nullptr);
    }
    durable_ = false;
  }

  Connection connection_;  // first: closed after the statements are finalized
  Statement upsert_job_;
  Statement delete_job_;
  Statement upsert_run_;
  Statement trim_runs_;
  Statement raise_last_run_id_;
  Statement insert_event_;
  Statement trim_channel_events_;
  Statement trim_events_;
  Statement delete_event_;
  std::size_t history_per_job_;
  std::size_t events_per_channel_;
  std::size_t events_in_all_;
  bool durable_ = false;  // the current transaction runs with synchronous = FULL
};

std::unique_ptr<JobStore> JobStore::open(const std::filesystem::path& file,
                                         std::size_t history_per_job) {
  JobStoreOptions options;
  options.history_per_job = history_per_job;
  return open(file, options);
}

std::unique_ptr<JobStore> JobStore::open(const std::filesystem::path& file,
                                         const JobStoreOptions& options) {
  create_private(file);
  auto database = Database::open(file.string(), nullptr, file, options);
  const std::uint64_t last_run_id = reading(file, [&] { return database->last_run_id(); });
  return std::unique_ptr<JobStore>(new JobStore(file, std::move(database), last_run_id, options));
}

std::unique_ptr<JobStore> JobStore::open(const PrivateDir& dir, std::string_view name,
                                         const JobStoreOptions& options) {
  const std::filesystem::path file = dir.shown(name);
  try {
    ::close(dir.open_file(name, O_RDWR | O_CREAT, 0600));
  } catch (const std::exception& error) {
    throw StoreError("cannot open job database: " + std::string(error.what()));
  }
  auto database = Database::open(dir.entry_path(name), path_keeping_vfs(), file, options);
  const std::uint64_t last_run_id = reading(file, [&] { return database->last_run_id(); });
  return std::unique_ptr<JobStore>(new JobStore(file, std::move(database), last_run_id, options));
}

JobStore::JobStore(std::filesystem::path file, std::unique_ptr<Database> database,
                   std::uint64_t last_run_id, const JobStoreOptions& options)
    : file_(std::move(file)),
      max_queued_writes_(std::max<std::size_t>(options.max_queued_writes, 1)),
      max_queued_events_(std::max<std::size_t>(options.max_queued_events, 1)),
      database_(std::move(database)),
      stored_last_run_id_(last_run_id),
      last_run_id_(last_run_id),
      writer_([this] { write_loop(); }) {}

JobStore::~JobStore() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  queue_changed_.notify_one();
  writer_.join();
}

std::vector<JobRecord> JobStore::load_jobs() {
  flush();
  return reading(file_, [&] { return database_->load_jobs(); });
}

std::vector<RunRecord> JobStore::load_runs(std::size_t per_job) {
  flush();
  return reading(file_, [&] { return database_->load_runs(per_job); });
}

std::uint64_t JobStore::last_run_id() {
  flush();
  const std::uint64_t stored = reading(file_, [&] { return database_->last_run_id(); });
  std::lock_guard lock(mutex_);
  return std::max(stored, last_run_id_);
}

void JobStore::save_job(JobRecord job) {
  {
    std::lock_guard lock(mutex_);
    ++writes_made_;
    const auto latest = latest_job_write_.find(job.id);
    if (latest != latest_job_write_.end() &&
        std::holds_alternative<JobRecord>(latest->second->write)) {
      // Whatever was queued after it needs only that the job exists.
      latest->second->write = std::move(job);
    } else {
      std::string id = job.id;
      latest_job_write_.insert_or_assign(std::move(id), append(std::move(job)));
      keep_bound();
    }
  }
  queue_changed_.notify_one();
}

void JobStore::delete_job(std::string id) {
  {
    std::lock_guard lock(mutex_);
    ++writes_made_;
    const auto latest = latest_job_write_.find(id);
    if (latest == latest_job_write_.end()) {
      auto position = append(JobDeletion{id});
      latest_job_write_.emplace(std::move(id), position);
      keep_bound();
    } else if (std::holds_alternative<JobRecord>(latest->second->write)) {
      // The runs queued after the save are skipped instead of saved, then cascaded away: the same.
      latest->second->write = JobDeletion{std::move(id)};
    }
    // else: already being deleted, and nothing queued since can have recreated it.
  }
  queue_changed_.notify_one();
}

void JobStore::save_run(RunRecord run) {
  {
    std::lock_guard lock(mutex_);
    ++writes_made_;
    last_run_id_ = std::max(last_run_id_, run.run_id);
    const auto latest = latest_run_write_.find(run.run_id);
    if (latest != latest_run_write_.end()) {
      const Queued& queued = *latest->second;
      const auto job = latest_job_write_.find(run.job_id);
      // Replacing in place is the same as applying in order unless the job was saved or deleted in
      // between (a run queued before a deletion is cascaded away, one after it is skipped).
      const bool job_written_since =
          job != latest_job_write_.end() && job->second->order > queued.order;
      if (std::get<RunRecord>(queued.write).job_id == run.job_id && !job_written_since) {
        latest->second->write = std::move(run);
        return;
      }
    }
    const std::uint64_t run_id = run.run_id;
    const auto position = append(std::move(run));
    latest_run_write_.insert_or_assign(run_id, position);
    run_writes_.push_back(position);
    keep_bound();
  }
  queue_changed_.notify_one();
}

std::optional<std::uint64_t> JobStore::save_event(EventRecord event, bool refusable) {
  std::uint64_t number = 0;
  {
    std::lock_guard lock(mutex_);
    // Refused rather than dropped: the publish is then refused too, and nothing acknowledged is
    // lost.
    if (refusable && queued_events_ >= max_queued_events_) return std::nullopt;
    ++queued_events_;
    number = ++writes_made_;
    append(std::move(event));
  }
  queue_changed_.notify_one();
  return number;
}

std::vector<EventRecord> JobStore::load_events() {
  flush();
  return reading(file_, [&] { return database_->load_events(); });
}

void JobStore::delete_events(const std::vector<std::uint64_t>& seqs) {
  if (seqs.empty()) return;
  flush();
  reading(file_, [&] {
    database_->begin(false);
    try {
      for (const std::uint64_t seq : seqs) database_->delete_event(seq);
      database_->commit();
    } catch (...) {
      database_->rollback();
      throw;
    }
    return 0;
  });
}

void JobStore::flush() {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = writes_made_;
  batch_written_.wait(lock, [&] { return writes_done_ >= target; });
}

std::size_t JobStore::queued_writes() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

JobStore::Queue::iterator JobStore::append(Write write) {
  return queue_.insert(queue_.end(), Queued{std::move(write), writes_made_});
}

void JobStore::keep_bound() {
  while (queue_.size() > max_queued_writes_ && !run_writes_.empty()) {
    const Queue::iterator oldest = run_writes_.front();
    run_writes_.pop_front();
    const auto latest = latest_run_write_.find(std::get<RunRecord>(oldest->write).run_id);
    if (latest != latest_run_write_.end() && latest->second == oldest) {
      latest_run_write_.erase(latest);
    }
    queue_.erase(oldest);
    dropped_writes_.fetch_add(1, std::memory_order_relaxed);
    if (!overflowing_) {
      overflowing_ = true;
      spdlog::warn("job store {}: more than {} writes queued, dropping the oldest run records",
                   file_.string(), max_queued_writes_);
    }
  }
}

void JobStore::write_loop() {
  for (;;) {
    Queue batch;
    std::uint64_t batch_end = 0;
    std::uint64_t last_run_id = 0;
    std::function<void(std::uint64_t, bool)> on_batch;
    {
      std::unique_lock lock(mutex_);
      queue_changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything is written
      batch.swap(queue_);
      queued_events_ = 0;
      latest_job_write_.clear();
      latest_run_write_.clear();
      run_writes_.clear();
      overflowing_ = false;
      batch_end = writes_made_;
      last_run_id = last_run_id_;
      on_batch = on_batch_;
    }
    const bool written = write_batch(batch, last_run_id);
    {
      std::lock_guard lock(mutex_);
      writes_done_ = batch_end;
    }
    if (on_batch) on_batch(batch_end, written);
    batch_written_.notify_all();
  }
}

bool JobStore::write_batch(const Queue& batch, std::uint64_t last_run_id) {
  const bool changes_jobs = std::any_of(batch.begin(), batch.end(), [](const Queued& queued) {
    return std::holds_alternative<JobRecord>(queued.write) ||
           std::holds_alternative<JobDeletion>(queued.write);
  });
  std::set<std::string> runs_added_to;    // jobs whose history to trim
  std::set<std::string> events_added_to;  // channels whose messages to trim
  try {
    database_->begin(changes_jobs);
    for (const Queued& queued : batch) {
      if (const auto* job = std::get_if<JobRecord>(&queued.write)) {
        database_->save_job(*job);
      } else if (const auto* deletion = std::get_if<JobDeletion>(&queued.write)) {
        database_->delete_job(deletion->id);
      } else if (const auto* event = std::get_if<EventRecord>(&queued.write)) {
        database_->save_event(*event);
        events_added_to.insert(event->channel);
      } else {
        const auto& run = std::get<RunRecord>(queued.write);
        database_->save_run(run);
        runs_added_to.insert(run.job_id);
      }
    }
    for (const std::string& job_id : runs_added_to) database_->trim_runs(job_id);
    for (const std::string& channel : events_added_to) database_->trim_events(channel);
    if (!events_added_to.empty()) database_->trim_all_events();
    if (last_run_id > stored_last_run_id_) database_->raise_last_run_id(last_run_id);
    database_->commit();
    stored_last_run_id_ = std::max(stored_last_run_id_, last_run_id);
    batches_written_.fetch_add(1, std::memory_order_relaxed);
    return true;
  } catch (const std::exception& error) {
    database_->rollback();
    write_errors_.fetch_add(batch.size(), std::memory_order_relaxed);
    spdlog::error("job store {}: {} writes lost: {}", file_.string(), batch.size(), error.what());
    return false;
  }
}

}  // namespace photon::store
