// The Redis broker's Lua scripts, one file each in src/broker/lua/ (what a script does, its KEYS
// and ARGV are at the top of its file), compiled in by cmake/embed_file.cmake. Each function
// returns its script as EVAL sends it: the file without its opening comment lines.
#pragma once

#include <string_view>

namespace photon::broker::lua {

// Locks (redis_broker_locks.cpp).
std::string_view acquire();  // acquire.lua: take, extend or report a lock; a new fencing token
std::string_view release();  // release.lua: release by the holder or the binding; waiters hear
std::string_view query();    // query.lua: one lock
std::string_view list();     // list.lua: the photon's locks from its index

// Jobs (redis_broker_jobs.cpp).
std::string_view claim();          // claim.lua: a job's slot, once per slot across daemons
std::string_view renew_run();      // renew_run.lua: the lease on a job's running key
std::string_view end_run();        // end_run.lua: the running key freed by its holder
std::string_view put_job();        // put_job.lua: a job's definition (and a new job's record)
std::string_view delete_job();     // delete_job.lua: a job with its record and history
std::string_view update_record();  // update_record.lua: what runs did to a job's record
std::string_view push_run();       // push_run.lua: a finished run into the job's history
std::string_view read_job();       // read_job.lua: one job with its record
std::string_view read_jobs();      // read_jobs.lua: every job with its record
std::string_view epoch();          // epoch.lua: the identity of the Redis data set

}  // namespace photon::broker::lua
