// The job store on real files: round trips, cascades, history bounds, durability across reopen and
// a crash, refusal of foreign, corrupt, future and unwritable files, the write queue's bound and
// order, and failed writes.
#include "store/job_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace photon::store {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A second connection to the file, as another program would open it.
class RawDatabase {
 public:
  explicit RawDatabase(const fs::path& file) {
    EXPECT_EQ(sqlite3_open(file.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDatabase() { sqlite3_close(db_); }
  RawDatabase(const RawDatabase&) = delete;
  RawDatabase& operator=(const RawDatabase&) = delete;

  void exec(const std::string& sql) {
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << sql << ": " << (error ? error : "");
    sqlite3_free(error);
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* statement = nullptr;
    std::string result;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &statement, nullptr), SQLITE_OK) << sql;
    if (sqlite3_step(statement) == SQLITE_ROW) {
      const auto* value = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
      result = value ? value : "";
    }
    sqlite3_finalize(statement);
    return result;
  }

 private:
  sqlite3* db_ = nullptr;
};

// Holds the file's write lock, so the store's writer waits in BEGIN IMMEDIATE until it ends.
class WriterBlocker {
 public:
  explicit WriterBlocker(const fs::path& file) : raw_(file) { raw_.exec("BEGIN IMMEDIATE"); }
  ~WriterBlocker() { raw_.exec("ROLLBACK"); }

 private:
  RawDatabase raw_;
};

JobRecord job(const std::string& id, std::uint64_t run_count = 0) {
  JobRecord record;
  record.id = id;
  record.method = "report";
  record.cron = "*/5 * * * *";
  record.created_at_ms = 1'700'000'000'000;
  record.created_by = "session-1";
  record.run_count = run_count;
  return record;
}

RunRecord run(std::uint64_t run_id, const std::string& job_id, const std::string& status = "ok") {
  RunRecord record;
  record.run_id = run_id;
  record.job_id = job_id;
  record.trigger = "schedule";
  record.scheduled_for_ms =
      1'700'000'000'000 + static_cast<std::int64_t>(run_id % 1'000'000) * 1000;
  record.started_at_ms = record.scheduled_for_ms + 3;
  if (status != "running") record.ended_at_ms = record.started_at_ms + 10;
  record.status = status;
  return record;
}

std::map<std::string, std::vector<std::uint64_t>> run_ids_by_job(
    const std::vector<RunRecord>& runs) {
  std::map<std::string, std::vector<std::uint64_t>> ids;
  for (const RunRecord& record : runs) ids[record.job_id].push_back(record.run_id);
  return ids;
}

// Waits until the writer has taken everything queued (it is then writing, or blocked writing).
void wait_until_taken(const JobStore& store) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (store.queued_writes() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(store.queued_writes(), 0u);
}

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/photon-store-XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    file_ = dir_ / "demo.jobs";
  }
  void TearDown() override {
    fs::permissions(dir_, fs::perms::owner_all);
    fs::remove_all(dir_);
  }
  fs::path dir_;
  fs::path file_;
};

TEST_F(JobStoreTest, EveryFieldRoundTrips) {
  JobRecord full = job("full");
  full.args_json = R"({"to":"ops@example.com","n":[1,2]})";
  full.timezone = "Europe/Paris";
  full.catch_up = "skip";
  full.overlap = "allow";
  full.created_by = "photon";
  full.last_run_ms = -5;  // before the epoch, still a time
  full.next_run_ms = 1'800'000'000'000;
  full.run_count = 18'446'744'073'709'551'615ull;
  full.last_status = "timed_out";
  full.last_error = "no reply after 30 s: \"\xc3\xa9t\xc3\xa9\"\n";
  full.declared = true;
  const JobRecord bare = job("bare");  // optionals empty, defaults

  RunRecord running = run(7, "full", "running");
  running.trigger = "catch-up";
  RunRecord failed = run(9'223'372'036'854'775'807ull, "bare", "failed");  // INT64_MAX
  failed.trigger = "manual";
  failed.error = "exit status 3";
  RunRecord interrupted = run(8, "full", "failed");
  interrupted.ended_at_ms.reset();
  interrupted.interrupted = true;
  interrupted.found_at_ms = 1'700'000'100'000;
  {
    auto store = JobStore::open(file_);
    store->save_job(full);
    store->save_job(bare);
    store->save_run(running);
    store->save_run(interrupted);
    store->save_run(failed);
    // Reads see the writes queued before them, without a flush.
    EXPECT_EQ(store->load_jobs(), (std::vector<JobRecord>{bare, full}));
  }
  auto store = JobStore::open(file_);
  EXPECT_EQ(store->load_jobs(), (std::vector<JobRecord>{bare, full}));
  EXPECT_EQ(store->load_runs(10), (std::vector<RunRecord>{failed, running, interrupted}));
  EXPECT_EQ(store->last_run_id(), failed.run_id);
  EXPECT_EQ(store->write_errors(), 0u);
}

TEST_F(JobStoreTest, SavingAJobAgainReplacesItAndKeepsItsRuns) {
  auto store = JobStore::open(file_);
  store->save_job(job("a"));
  store->save_run(run(1, "a"));
  store->flush();
  JobRecord changed = job("a", 1);
  changed.cron = "0 9 * * 1-5";
  changed.last_run_ms = 12;
  store->save_job(changed);
  EXPECT_EQ(store->load_jobs(), std::vector<JobRecord>{changed});
  EXPECT_EQ(store->load_runs(10), std::vector<RunRecord>{run(1, "a")});
}

TEST_F(JobStoreTest, DeletingAJobDeletesItsRuns) {
  auto store = JobStore::open(file_);
  store->save_job(job("a"));
  store->save_job(job("b"));
  store->save_run(run(1, "a"));
  store->save_run(run(2, "b"));
  store->save_run(run(3, "a"));
  store->flush();
  store->delete_job("a");
  EXPECT_EQ(store->load_jobs(), std::vector<JobRecord>{job("b")});
  EXPECT_EQ(store->load_runs(10), std::vector<RunRecord>{run(2, "b")});
  store->delete_job("never-existed");
  store->flush();
  EXPECT_EQ(store->write_errors(), 0u);
}

TEST_F(JobStoreTest, RunOfADeletedJobIsSkippedNotAFailure) {
  auto store = JobStore::open(file_);
  store->save_job(job("gone"));
  store->save_run(run(1, "gone", "running"));
  store->flush();
  store->delete_job("gone");
  store->save_run(run(1, "gone", "cancelled"));  // the run ends after its job was deleted
  store->save_run(run(2, "never-existed"));
  store->save_job(job("kept"));  // same batch, or a later one: either way written
  store->flush();
  EXPECT_EQ(store->write_errors(), 0u);
  EXPECT_EQ(store->load_jobs(), std::vector<JobRecord>{job("kept")});
  EXPECT_TRUE(store->load_runs(10).empty());
  EXPECT_EQ(store->last_run_id(), 2u);
}

TEST_F(JobStoreTest, HistoryIsTrimmedPerJob) {
  auto store = JobStore::open(file_, 3);
  store->save_job(job("a"));
  store->save_job(job("b"));
  for (std::uint64_t id = 1; id <= 5; ++id) store->save_run(run(id, "a"));
  store->save_run(run(6, "b"));
  store->save_run(run(7, "b"));
  store->flush();
  store->save_run(run(8, "a"));  // in a later batch too
  const auto ids = run_ids_by_job(store->load_runs(100));
  EXPECT_EQ(ids.at("a"), (std::vector<std::uint64_t>{4, 5, 8}));
  EXPECT_EQ(ids.at("b"), (std::vector<std::uint64_t>{6, 7}));
}

TEST_F(JobStoreTest, LoadRunsGivesTheNewestPerJobOldestFirst) {
  auto store = JobStore::open(file_);
  store->save_job(job("b"));
  store->save_job(job("a"));
  for (std::uint64_t id = 1; id <= 6; ++id) store->save_run(run(id, id % 2 == 0 ? "a" : "b"));
  const auto runs = store->load_runs(2);
  std::vector<std::pair<std::string, std::uint64_t>> order;
  for (const RunRecord& record : runs) order.emplace_back(record.job_id, record.run_id);
  EXPECT_EQ(order, (std::vector<std::pair<std::string, std::uint64_t>>{
                       {"a", 4}, {"a", 6}, {"b", 3}, {"b", 5}}));
  EXPECT_TRUE(store->load_runs(0).empty());
}

TEST_F(JobStoreTest, LastRunIdSurvivesReopenAndDeletion) {
  {
    auto store = JobStore::open(file_, 1);
    EXPECT_EQ(store->last_run_id(), 0u);
    store->save_job(job("a"));
    store->save_run(run(41, "a"));
    store->save_run(run(42, "a"));
  }
  {
    auto store = JobStore::open(file_);
    EXPECT_EQ(store->last_run_id(), 42u);
    store->delete_job("a");  // and with it every run
  }
  auto store = JobStore::open(file_);
  EXPECT_TRUE(store->load_runs(10).empty());
  EXPECT_EQ(store->last_run_id(), 42u);
}

TEST_F(JobStoreTest, WritesAreOnDiskAfterFlushAndAfterDestruction) {
  auto store = JobStore::open(file_);
  store->save_job(job("flushed"));
  store->flush();
  EXPECT_EQ(store->queued_writes(), 0u);
  EXPECT_EQ(RawDatabase(file_).text("SELECT group_concat(id) FROM jobs"), "flushed");

  for (int i = 0; i < 500; ++i) store->save_job(job("late-" + std::to_string(i)));
  store->save_run(run(1, "late-0"));
  store.reset();  // no flush: the destructor finishes the queue
  auto reopened = JobStore::open(file_);
  EXPECT_EQ(reopened->load_jobs().size(), 501u);
  EXPECT_EQ(reopened->load_runs(10).size(), 1u);
}

TEST_F(JobStoreTest, FileIsWalModePrivateAndMarkedAsPhotonds) {
  const mode_t old_umask = ::umask(022);
  auto store = JobStore::open(file_);
  store->save_job(job("a"));
  store->flush();
  ::umask(old_umask);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    struct stat status {};
    ASSERT_EQ(::stat((file_.string() + suffix).c_str(), &status), 0) << suffix;
    EXPECT_EQ(status.st_mode & 0777, 0600u) << suffix;
  }
  RawDatabase raw(file_);
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.text("PRAGMA user_version"), "3");
  EXPECT_EQ(raw.text("PRAGMA application_id"), std::to_string(0x50484F54));
}

// The daemon's way: through its checked directory's descriptor. The database, -wal and -shm land
// in that directory even after its path was moved, and errors name the directory's path.
TEST_F(JobStoreTest, OpenedThroughTheDirectoryDescriptorStaysInThatDirectory) {
  const PrivateDir daemons = PrivateDir::open_owned(dir_ / "daemons");
  auto store = JobStore::open(daemons, "svc.db");
  fs::rename(dir_ / "daemons", dir_ / "moved");
  fs::create_directory(dir_ / "daemons");  // a stand-in at the old path
  store->save_job(job("a"));
  store->flush();
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string name = std::string("svc.db") + suffix;
    EXPECT_TRUE(fs::exists(dir_ / "moved" / name)) << name;
    EXPECT_FALSE(fs::exists(dir_ / "daemons" / name)) << name;
  }
  store.reset();
  auto reopened = JobStore::open(daemons, "svc.db");
  EXPECT_EQ(reopened->load_jobs().size(), 1u);
}

TEST_F(JobStoreTest, SymlinkAtTheDatabaseIsRefusedNamingIt) {
  const PrivateDir daemons = PrivateDir::open_owned(dir_ / "daemons");
  auto elsewhere = JobStore::open(file_);
  elsewhere->save_job(job("theirs"));
  elsewhere.reset();
  fs::create_symlink(file_, dir_ / "daemons" / "svc.db");
  try {
    JobStore::open(daemons, "svc.db");
    FAIL() << "the symlink was followed";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what())
                  .find((dir_ / "daemons" / "svc.db").string() + " is a symbolic link"),
              std::string::npos)
        << error.what();
  }
}

TEST_F(JobStoreTest, CorruptFileIsRefusedNamingIt) {
  std::ofstream garbage(file_, std::ios::binary);
  for (int i = 0; i < 8192; ++i) garbage.put(static_cast<char>((i * 7919) % 251));
  garbage.close();
  try {
    JobStore::open(file_);
    FAIL() << "opened a corrupt file";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what()).find(file_.string()), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("not a database"), std::string::npos) << error.what();
  }
}

// Page 1 (header and schema) intact, every other page overwritten: found when the data is read.
TEST_F(JobStoreTest, DamagedPagesAreReportedNamingTheFile) {
  {
    auto store = JobStore::open(file_);
    for (int i = 0; i < 50; ++i) {
      JobRecord record = job("job-" + std::to_string(i));
      record.args_json = "{\"pad\":\"" + std::string(500, 'x') + "\"}";
      store->save_job(record);
      store->save_run(run(static_cast<std::uint64_t>(i) + 1, record.id));
    }
  }  // closed: the log is checkpointed into the file
  const auto size = fs::file_size(file_);
  ASSERT_GT(size, 4 * 4096u);
  {
    std::fstream damage(file_, std::ios::binary | std::ios::in | std::ios::out);
    damage.seekp(4096);
    for (std::uintmax_t i = 4096; i < size; ++i) damage.put(static_cast<char>(i * 31));
  }
  try {
    auto store = JobStore::open(file_);
    store->load_jobs();
    store->load_runs(100);
    FAIL() << "read a damaged file";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what()).find(file_.string()), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("malformed"), std::string::npos) << error.what();
  }
}

TEST_F(JobStoreTest, AnotherProgramsDatabaseIsRefusedAndLeftAlone) {
  RawDatabase(file_).exec("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine')");
  try {
    JobStore::open(file_);
    FAIL() << "opened another program's database";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what()).find(file_.string()), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("not a photond job database"), std::string::npos)
        << error.what();
  }
  RawDatabase raw(file_);
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "delete");
  EXPECT_EQ(raw.text("SELECT text FROM notes"), "mine");
}

TEST_F(JobStoreTest, FileOfANewerSchemaIsRefused) {
  JobStore::open(file_)->save_job(job("a"));
  RawDatabase(file_).exec("PRAGMA user_version = 99");
  try {
    JobStore::open(file_);
    FAIL() << "opened a newer schema";
  } catch (const StoreError& error) {
    EXPECT_NE(std::string(error.what()).find(file_.string()), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("schema version 99"), std::string::npos)
        << error.what();
  }
}

// A file of schema version 1 recorded a run cut short by a crash as ended when it started: opened
// now, that run has no end and is marked interrupted (when it was found is not known), and other
// runs are as they were.
TEST_F(JobStoreTest, VersionOneInterruptedRunsLoseTheirMadeUpEnd) {
  JobStore::open(file_)->save_job(job("a"));
  {
    RawDatabase raw(file_);
    raw.exec("DROP TABLE events");  // version 3's
    raw.exec("ALTER TABLE runs DROP COLUMN found_at_ms");
    raw.exec("ALTER TABLE runs DROP COLUMN interrupted");
    raw.exec("PRAGMA user_version = 1");
    raw.exec(
        "INSERT INTO runs VALUES (1, 'a', 'schedule', 1000, 1004, 1004, 'failed', "
        "'the daemon stopped while it ran')");
    raw.exec(
        "INSERT INTO runs VALUES (2, 'a', 'schedule', 2000, 2004, 2004, 'failed', 'exit status "
        "1')");
  }
  auto store = JobStore::open(file_);
  const std::vector<RunRecord> runs = store->load_runs(10);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_TRUE(runs[0].interrupted);
  EXPECT_FALSE(runs[0].ended_at_ms);
  EXPECT_FALSE(runs[0].found_at_ms);
  EXPECT_FALSE(runs[1].interrupted);
  EXPECT_EQ(runs[1].ended_at_ms, 2004);
}

// Chosen behaviour: a store that could not write is refused at start-up, not discovered later.
TEST_F(JobStoreTest, ReadOnlyDirectoryIsRefusedAtOpen) {
  fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                            fs::perms::group_exec | fs::perms::others_read |
                            fs::perms::others_exec);
  // In a child: root ignores permissions, so as root the child becomes nobody first.
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::geteuid() == 0 && ::setresuid(65534, 65534, 65534) != 0) ::_exit(2);
    try {
      JobStore::open(file_);
    } catch (const StoreError& error) {
      ::_exit(std::string(error.what()).find(file_.string()) == std::string::npos ? 3 : 0);
    }
    ::_exit(1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: opened, 2: cannot drop root, 3: path not named";
  EXPECT_FALSE(fs::exists(file_));
}

TEST_F(JobStoreTest, WritesFlushedBeforeACrashSurviveIt) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = JobStore::open(file_);
    store->save_job(job("survivor"));
    store->save_run(run(9, "survivor"));
    store->flush();
    ::_exit(0);  // no destructor: the connection is never closed, the WAL never checkpointed
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(fs::exists(file_.string() + "-wal"));
  auto store = JobStore::open(file_);
  EXPECT_EQ(store->load_jobs(), std::vector<JobRecord>{job("survivor")});
  EXPECT_EQ(store->load_runs(10), std::vector<RunRecord>{run(9, "survivor")});
  EXPECT_EQ(store->last_run_id(), 9u);
}

// 20,000 runs, each saved as it starts and as it ends, among job updates: the queue stays bounded,
// job updates all land, and each job ends with its newest runs, whatever the writer's pace.
TEST_F(JobStoreTest, BurstOfRunsStaysBoundedAndKeepsEveryJob) {
  constexpr std::uint64_t kRuns = 20'000;
  constexpr int kJobs = 10;
  auto store = JobStore::open(file_);
  for (int j = 0; j < kJobs; ++j) store->save_job(job("job-" + std::to_string(j)));
  std::size_t most_queued = 0;
  std::map<std::string, std::uint64_t> last_count;
  for (std::uint64_t id = 1; id <= kRuns; ++id) {
    const std::string job_id = "job-" + std::to_string(id % kJobs);
    store->save_run(run(id, job_id, "running"));
    store->save_run(run(id, job_id, "ok"));
    if (id % 7 == 0) {
      store->save_job(job(job_id, id));
      last_count[job_id] = id;
    }
    most_queued = std::max(most_queued, store->queued_writes());
  }
  store->flush();
  EXPECT_LE(most_queued, JobStoreOptions{}.max_queued_writes);
  EXPECT_EQ(store->write_errors(), 0u);
  for (const JobRecord& record : store->load_jobs()) {
    EXPECT_EQ(record.run_count, last_count.at(record.id)) << record.id;
  }
  const auto runs = store->load_runs(1000);
  ASSERT_EQ(runs.size(), kJobs * JobStore::kDefaultHistoryPerJob);
  for (const RunRecord& record : runs) {
    EXPECT_GT(record.run_id, kRuns - kJobs * JobStore::kDefaultHistoryPerJob);
    EXPECT_EQ(record.status, "ok");
  }
  EXPECT_EQ(store->last_run_id(), kRuns);
  std::cout << "20,000 runs written in " << store->batches_written() << " transactions, "
            << store->dropped_writes() << " dropped\n";
}

// With the writer held up, the queue fills: writes coalesce, the oldest runs are dropped, no job
// update is, and what waited is written in one transaction once the writer can go on.
TEST_F(JobStoreTest, FullQueueDropsOldestRunsNeverJobsAndDrainsInOneTransaction) {
  constexpr std::uint64_t kRuns = 20'000;
  constexpr int kJobs = 10;
  JobStoreOptions options;
  options.history_per_job = 50;
  options.max_queued_writes = 1000;
  options.busy_timeout = 60s;
  auto store = JobStore::open(file_, options);
  for (int j = 0; j < kJobs; ++j) store->save_job(job("job-" + std::to_string(j)));
  store->flush();
  const std::uint64_t batches_before = store->batches_written();
  std::map<std::string, std::uint64_t> last_count;
  {
    WriterBlocker blocker(file_);
    store->save_job(job("job-0"));
    wait_until_taken(*store);  // from here on, everything waits in the queue
    std::size_t most_queued = 0;
    for (std::uint64_t id = 1; id <= kRuns; ++id) {
      const std::string job_id = "job-" + std::to_string(id % kJobs);
      store->save_run(run(id, job_id, "running"));
      store->save_run(run(id, job_id, "ok"));
      if (id % 7 == 0) {
        store->save_job(job(job_id, id));
        last_count[job_id] = id;
      }
      most_queued = std::max(most_queued, store->queued_writes());
    }
    EXPECT_EQ(most_queued, options.max_queued_writes);
    // Each job's updates coalesced into one queued write, each run's two into one: the rest of
    // the queue is the newest runs.
    EXPECT_EQ(store->dropped_writes(), kRuns - (options.max_queued_writes - kJobs));
  }
  store->flush();
  EXPECT_EQ(store->batches_written(), batches_before + 2);
  EXPECT_EQ(store->write_errors(), 0u);
  for (const JobRecord& record : store->load_jobs()) {
    EXPECT_EQ(record.run_count, last_count.at(record.id)) << record.id;
  }
  const auto runs = store->load_runs(1000);
  ASSERT_EQ(runs.size(), kJobs * options.history_per_job);
  for (const RunRecord& record : runs) {
    EXPECT_GT(record.run_id, kRuns - kJobs * options.history_per_job);
    EXPECT_EQ(record.status, "ok");
  }
  EXPECT_EQ(store->last_run_id(), kRuns);
}

// Coalescing must give what applying the writes one by one gives.
TEST_F(JobStoreTest, CoalescedWritesKeepTheirOrder) {
  auto store = JobStore::open(file_);
  JobRecord second = job("a");
  second.method = "second";
  {
    WriterBlocker blocker(file_);
    store->save_job(job("warm-up"));
    wait_until_taken(*store);

    store->save_job(job("a"));
    store->save_run(run(1, "a", "running"));
    store->save_run(run(1, "a", "ok"));      // replaces the queued one
    store->delete_job("a");                  // replaces the queued save
    store->save_job(second);                 // after the deletion: queued after it
    store->save_run(run(1, "a", "failed"));  // after the new save: must not replace
    store->save_job(job("b"));
    store->delete_job("b");
    store->delete_job("b");  // already queued
    store->save_job(job("c"));
    store->save_run(run(2, "c", "running"));
    store->save_job(job("c", 5));        // replaces the queued save of c
    store->save_run(run(2, "c", "ok"));  // replaces the queued run
    EXPECT_EQ(store->queued_writes(), 7u);
  }
  EXPECT_EQ(store->load_jobs(), (std::vector<JobRecord>{second, job("c", 5), job("warm-up")}));
  EXPECT_EQ(store->load_runs(10), (std::vector<RunRecord>{run(1, "a", "failed"), run(2, "c")}));
  EXPECT_EQ(store->write_errors(), 0u);
}

TEST_F(JobStoreTest, FailedWritesAreCountedAndTheStoreGoesOn) {
  JobStoreOptions options;
  options.busy_timeout = 50ms;
  auto store = JobStore::open(file_, options);
  {
    WriterBlocker blocker(file_);  // another program holds the file longer than busy_timeout
    store->save_job(job("lost"));
    store->save_run(run(1, "lost"));
    store->flush();
    EXPECT_EQ(store->write_errors(), 2u);
  }
  store->save_job(job("kept"));
  store->flush();
  EXPECT_EQ(store->write_errors(), 2u);
  EXPECT_EQ(store->load_jobs(), std::vector<JobRecord>{job("kept")});
  EXPECT_EQ(store->last_run_id(), 1u);  // handed out all the same: never reused
}

// Persistent channels' messages: kept in publish order across reopenings, trimmed per channel and
// in all as new ones come, deleted on request, and every write reported to the batch listener.
TEST_F(JobStoreTest, ChannelMessagesAreKeptInOrderWithinTheirBounds) {
  const auto event = [](std::string id, std::string channel, std::int64_t at) {
    return EventRecord{.event_id = std::move(id),
                       .channel = std::move(channel),
                       .message_json = R"({"n":1})",
                       .at_ms = at};
  };
  {
    auto store =
        JobStore::open(file_, JobStoreOptions{.events_per_channel = 2, .events_in_all = 3});
    std::mutex mutex;
    std::uint64_t reported = 0;
    bool all_written = true;
    store->set_batch_listener([&](std::uint64_t done, bool written) {
      std::lock_guard lock(mutex);
      reported = std::max(reported, done);
      all_written = all_written && written;
    });
    std::optional<std::uint64_t> last;
    for (int n = 1; n <= 4; ++n) last = store->save_event(event("e-" + std::to_string(n), "a", n));
    store->save_event(event("e-5", "b", 5));
    ASSERT_TRUE(last.has_value());
    store->flush();
    std::lock_guard lock(mutex);
    EXPECT_GE(reported, *last);
    EXPECT_TRUE(all_written);
  }
  auto store = JobStore::open(file_, JobStoreOptions{.events_per_channel = 2, .events_in_all = 3});
  std::vector<EventRecord> kept = store->load_events();
  std::vector<std::string> ids;
  for (const EventRecord& record : kept) ids.push_back(record.event_id);
  // "a" keeps its last 2; all channels, their last 3.
  EXPECT_EQ(ids, (std::vector<std::string>{"e-3", "e-4", "e-5"}));
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[0].channel, "a");
  EXPECT_EQ(kept[0].message_json, R"({"n":1})");
  EXPECT_EQ(kept[0].at_ms, 3);
  EXPECT_LT(kept[0].seq, kept[1].seq);
  store->delete_events({kept[0].seq, kept[2].seq});
  kept = store->load_events();
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].event_id, "e-4");
}

}  // namespace
}  // namespace photon::store
