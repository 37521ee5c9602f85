// Refusal codes: why a service did not do what it was asked, with the values the client's sentence
// needs. Services return these, never sentences; protocol/error_messages.hpp holds the one sentence
// of each code, and the protocol layer turns a refusal into the text a client reads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace photon {

enum class RefusalCode : std::uint8_t {
  // Everything
  kShuttingDown,  // no values
  // Channels
  kTooManySubscriptions,          // limit
  kTooManySubscriptionsInDaemon,  // limit
  // Locks
  kTooManyLocks,                    // limit
  kTooManyLockWaitersOnConnection,  // limit
  kTooManyLockWaiters,              // limit
  kTokenNotIssued,                  // why the high-water mark was not persisted
  kTokensExhausted,                 // no values
  kLockServiceUnavailable,          // the broker's error
  // Methods and commands
  kNoMethods,                    // photon name
  kUnknownMethod,                // method, the available ones ("a, b and N more" or "none")
  kCommandIdInUse,               // id
  kTooManyCommandsOnConnection,  // limit
  kTooManyCommandsInDaemon,      // limit
  kNoCommandRunning,             // id
  kTooManySessions,              // limit
  kMethodAtMaxConcurrent,        // method, running, max_concurrent
  kTooManyMethodsRunning,        // running, limit
  // Jobs
  kTooManyJobs,            // limit
  kNoSuchJob,              // job id
  kJobHistoryUnavailable,  // why
  kTooManyJobRuns,         // no values
  kJobStoreUnavailable,    // why
  // Persistent channels
  kPersistBacklogFull,  // channel, limit
  kPersistFailed,       // channel
  kCount,               // not a code: the number of codes
};

// A refusal and the values its sentence needs, in the order the sentence uses them.
struct Refused {
  RefusalCode code = RefusalCode::kShuttingDown;
  std::vector<std::string> values;
};

}  // namespace photon
