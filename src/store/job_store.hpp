// The daemon's durable state: cron jobs and a bounded history of their runs, and the recent
// messages of persistent channels (--persist), in one SQLite file, written by the store's own
// thread so that the event loop never waits for the disk.
#pragma once

#include "common/private_dir.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

namespace photon::store {

// A job database that cannot be opened or used; what() names the file and gives SQLite's message.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct JobRecord {
  std::string id;
  std::string method;
  std::string args_json = "{}";  // a JSON object, as text
  std::string cron;
  std::string timezone;             // IANA name; empty = the daemon's local zone
  std::string catch_up = "latest";  // "latest" | "skip"
  std::string overlap = "skip";     // "skip" | "allow"
  std::int64_t created_at_ms = 0;   // epoch ms
  std::string created_by;           // session that scheduled it; "photon" for declared jobs
  std::optional<std::int64_t> last_run_ms;
  std::optional<std::int64_t> next_run_ms;
  std::uint64_t run_count = 0;
  std::string last_status;  // "", "ok", "failed", "timed_out", "cancelled", "skipped", "missed"
  std::string last_error;
  bool declared = false;  // declared by the photon (manifest / C++), not by a request

  bool operator==(const JobRecord&) const = default;
};

struct RunRecord {
  // Unique and increasing across the daemon's life (restarts too); at most INT64_MAX (SQLite
  // orders integers as signed).
  std::uint64_t run_id = 0;
  std::string job_id;
  std::string trigger;                // "schedule" | "catch-up" | "manual"
  std::int64_t scheduled_for_ms = 0;  // the slot it ran for (epoch ms)
  std::int64_t started_at_ms = 0;
  std::optional<std::int64_t> ended_at_ms;  // none while running, or when interrupted
  std::string status;                       // "running", then as JobRecord::last_status
  std::string error;
  // Cut short by a crash: its end is unknown; found_at_ms is when the next start found it (none
  // for runs recorded so before schema version 2, whose finding time was not kept).
  bool interrupted = false;
  std::optional<std::int64_t> found_at_ms;

  bool operator==(const RunRecord&) const = default;
};

// A message of a persistent channel, as published.
struct EventRecord {
  std::uint64_t seq = 0;  // its place in the store (publish order across runs); 0 until saved
  std::string event_id;   // as its subscribers received it
  std::string channel;
  std::string message_json;
  std::int64_t at_ms = 0;  // when it was published (epoch ms)

  bool operator==(const EventRecord&) const = default;
};

struct JobStoreOptions {
  // Runs kept per job: saving a run deletes that job's older runs beyond this many.
  std::size_t history_per_job = 100;
  // Writes waiting for the writer thread (see JobStore's bound); at least 1.
  std::size_t max_queued_writes = 10'000;
  // How long a write waits for another connection's lock on the file before it fails.
  std::chrono::milliseconds busy_timeout{5000};
  // Channel messages kept: per channel, and in all (older ones are deleted as new ones come).
  std::size_t events_per_channel = 500;
  std::size_t events_in_all = 10'000;
  // Channel messages waiting for the writer; save_event refuses more.
  std::size_t max_queued_events = 10'000;
};

// Durability: every write survives a crash of the daemon once its transaction is committed (flush
// waits for that). Transactions that change job definitions are also synced to the device (they
// survive a power loss); those that only record runs are not (synchronous=NORMAL in WAL mode: a
// power loss may lose the last few run records, never corrupt the file).
//
// Bound: at most max_queued_writes writes wait for the writer. A write replaces a waiting write of
// the same key (job id, run id) when that keeps the outcome of applying them in order. Past the
// bound, the oldest waiting run records are dropped (dropped_writes() counts them, a warning is
// logged); job definitions and deletions are never dropped, so only they can exceed the bound.
//
// Order: the writer applies the writes in the order they were made, each batch (everything queued
// when it wakes) in one transaction. A run of a job that no longer exists is skipped, not an error.
//
// Thread rule: every public member from one thread (the event loop); the writes themselves run on
// the store's own thread.
class JobStore {
 public:
  static constexpr std::size_t kDefaultHistoryPerJob = 100;

  // Opens or creates the database at `file` (created 0600; its directory must exist), in WAL mode
  // with foreign keys on, creating or migrating the schema (its version is PRAGMA user_version,
  // and PRAGMA application_id marks the file as photond's). Throws StoreError naming the file when
  // it cannot be opened or created (e.g. a read-only directory), is not a photond job database,
  // is corrupt, or was written by a newer photond.
  static std::unique_ptr<JobStore> open(const std::filesystem::path& file,
                                        std::size_t history_per_job = kDefaultHistoryPerJob);
  static std::unique_ptr<JobStore> open(const std::filesystem::path& file,
                                        const JobStoreOptions& options);
  // The same for entry `name` of `dir` (the daemon's): the database, its -wal and its -shm are
  // reached through the directory's descriptor and never through a symlink. Errors name
  // dir.shown(name).
  static std::unique_ptr<JobStore> open(const PrivateDir& dir, std::string_view name,
                                        const JobStoreOptions& options = {});
  // Finishes the queued writes, then closes the file.
  ~JobStore();

  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Reads, synchronous (meant for start-up, before the loop runs). Each first waits for the queued
  // writes, so it sees every write made before it. Throw StoreError when the file cannot be read.
  std::vector<JobRecord> load_jobs();  // sorted by id (bytewise)
  // The newest `per_job` runs of each job, sorted by job id, then oldest first.
  std::vector<RunRecord> load_runs(std::size_t per_job);
  // The highest run id ever saved, even if that run or its job has been deleted since; 0 when none.
  std::uint64_t last_run_id();

  // Writes: queued, return at once, never throw (but std::bad_alloc). A job or a run is inserted
  // or updated by its key. save_run trims that job's history to history_per_job. delete_job
  // deletes the job's runs too. A write that fails is counted in write_errors() and logged.
  void save_job(JobRecord job);
  void delete_job(std::string id);
  void save_run(RunRecord run);
  // A channel message: never coalesced nor dropped, but refused (nothing) when `refusable` and
  // max_queued_events wait already. Else the write's number: the batch listener's `done` reaches
  // it once the write is committed (or has failed).
  std::optional<std::uint64_t> save_event(EventRecord event, bool refusable = true);
  std::size_t max_queued_events() const { return max_queued_events_; }

  // Called by the writer thread after each batch, with the number of writes made up to its end and
  // whether they were committed (false: the batch failed and was rolled back). Set it before the
  // first write.
  void set_batch_listener(std::function<void(std::uint64_t done, bool committed)> listener) {
    std::lock_guard lock(mutex_);
    on_batch_ = std::move(listener);
  }

  // The kept channel messages, in publish order (synchronous, for start-up, as load_jobs).
  std::vector<EventRecord> load_events();
  // Deletes these messages (by seq) at once (synchronous, for start-up).
  void delete_events(const std::vector<std::uint64_t>& seqs);

  // Waits until every write made so far is committed (or has failed, or was dropped).
  void flush();

  // Writes that failed (each failed batch is logged once with spdlog::error); the daemon keeps
  // running and its status request shows this count.
  std::uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }
  // Run records dropped because the queue was full.
  std::uint64_t dropped_writes() const { return dropped_writes_.load(std::memory_order_relaxed); }
  // Transactions committed by the writer (one per batch).
  std::uint64_t batches_written() const { return batches_written_.load(std::memory_order_relaxed); }
  // Writes waiting for the writer thread (not counting the batch it is writing).
  std::size_t queued_writes() const;

 private:
  class Database;  // the connection and its prepared statements (job_store.cpp)
  struct JobDeletion {
    std::string id;
  };
  using Write = std::variant<JobRecord, JobDeletion, RunRecord, EventRecord>;
  struct Queued {
    Write write;
    std::uint64_t order;  // when it was first queued; a replacement keeps the place and the order
  };
  using Queue = std::list<Queued>;

  JobStore(std::filesystem::path file, std::unique_ptr<Database> database,
           std::uint64_t last_run_id, const JobStoreOptions& options);

  Queue::iterator append(Write write);  // with mutex_ held
  void keep_bound();                    // with mutex_ held
  void write_loop();
  // Whether the batch was committed.
  bool write_batch(const Queue& batch, std::uint64_t last_run_id);

  const std::filesystem::path file_;
  const std::size_t max_queued_writes_;
  const std::size_t max_queued_events_;
  // Used by the writer thread only, except by the reads, which run after a flush: then the writer
  // is idle until the next write, which only the reading thread can make.
  std::unique_ptr<Database> database_;
  std::uint64_t stored_last_run_id_ = 0;  // the writer's: last_run_id as committed

  mutable std::mutex mutex_;
  std::condition_variable queue_changed_;  // the writer waits for writes (or the end)
  std::condition_variable batch_written_;  // flush waits for the writer
  // Guarded by mutex_: the waiting writes in order, and indexes into them for coalescing.
  Queue queue_;
  std::unordered_map<std::string, Queue::iterator> latest_job_write_;    // by job id
  std::unordered_map<std::uint64_t, Queue::iterator> latest_run_write_;  // by run id
  std::deque<Queue::iterator> run_writes_;  // every queued run write, oldest first
  std::uint64_t writes_made_ = 0;           // write calls so far
  std::uint64_t writes_done_ = 0;           // of those, the ones the writer has finished
  std::uint64_t last_run_id_ = 0;           // the highest run id saved or loaded
  std::size_t queued_events_ = 0;           // channel messages in queue_
  bool overflowing_ = false;                // dropped runs since the writer last took the queue
  std::function<void(std::uint64_t, bool)> on_batch_;
  bool stopping_ = false;

  std::atomic<std::uint64_t> write_errors_{0};
  std::atomic<std::uint64_t> dropped_writes_{0};
  std::atomic<std::uint64_t> batches_written_{0};
  std::thread writer_;  // last: starts once everything above exists
};

}  // namespace photon::store
