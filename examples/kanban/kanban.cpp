// The kanban photon: boards of tasks, written in C++ with libphoton's embedding API. Its own
// program is its daemon: `kanban` (or `make run`) serves it on $PHOTON_DIR/daemons/kanban.sock.
//
//   photonctl sub 'board:*'                                  # one terminal
//   photonctl call kanban moveTask taskId=1 column=Done      # another: the first sees the event
#include <photon/photon.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace {

namespace json = boost::json;

struct Task {
  std::int64_t id = 0;
  std::string title;
  std::string column;
  std::string board;
};

json::object to_json(const Task& task) {
  return {{"id", task.id}, {"title", task.title}, {"column", task.column}, {"board", task.board}};
}

// The boards, shared by every session (each session has its own Kanban object, but one team has
// one set of boards). Guarded because sessions' calls run on different threads.
class BoardStore {
 public:
  static BoardStore& instance() {
    static BoardStore store;
    return store;
  }

  Task add(std::string board, std::string title, std::string column) {
    std::lock_guard lock(mutex_);
    Task task{next_id_++, std::move(title), std::move(column), std::move(board)};
    tasks_[task.id] = task;
    return task;
  }

  // The task as it was before the move.
  Task move(std::int64_t id, const std::string& column) {
    std::lock_guard lock(mutex_);
    Task& task = find(id);
    Task before = task;
    task.column = column;
    return before;
  }

  Task get(std::int64_t id) {
    std::lock_guard lock(mutex_);
    return find(id);
  }

  void remove(std::int64_t id) {
    std::lock_guard lock(mutex_);
    find(id);
    tasks_.erase(id);
  }

  json::array list(const std::string& board) {
    std::lock_guard lock(mutex_);
    json::array tasks;
    for (const auto& [id, task] : tasks_) {
      if (task.board == board) tasks.push_back(to_json(task));
    }
    return tasks;
  }

  json::object boards() {
    std::lock_guard lock(mutex_);
    json::object counts;
    for (const auto& [id, task] : tasks_) {
      counts[task.board] = counts.contains(task.board) ? counts[task.board].as_int64() + 1 : 1;
    }
    return counts;
  }

 private:
  BoardStore() {
    add("main", "Write the README", "Todo");
    add("main", "Fix the cron parser", "Doing");
    add("main", "Ship 1.0", "Todo");
  }

  Task& find(std::int64_t id) {
    auto found = tasks_.find(id);
    if (found == tasks_.end()) throw photon::MethodError("no task " + std::to_string(id));
    return found->second;
  }

  std::mutex mutex_;
  std::map<std::int64_t, Task> tasks_;
  std::int64_t next_id_ = 1;
};

// Reads a required string argument, or a default when `fallback` is given.
std::string string_arg(const json::object& args, std::string_view key,
                       std::optional<std::string> fallback = std::nullopt) {
  const json::value* value = args.if_contains(key);
  if (value == nullptr) {
    if (fallback) return *fallback;
    throw photon::MethodError("missing argument \"" + std::string(key) + "\"");
  }
  if (!value->is_string() || value->get_string().empty()) {
    throw photon::MethodError("\"" + std::string(key) + "\" must be a non-empty string");
  }
  return std::string(value->get_string());
}

// A task id given as a number (taskId=1 on the command line) or as a string ("1").
std::int64_t task_id_arg(const json::object& args) {
  const json::value* value = args.if_contains("taskId");
  if (value != nullptr && value->is_int64()) return value->get_int64();
  if (value != nullptr && value->is_string()) {
    try {
      return std::stoll(std::string(value->get_string()));
    } catch (const std::exception&) {
    }
  }
  throw photon::MethodError("\"taskId\" must be a task number");
}

// One instance per session: what a session chose (its current board) lives here; the boards
// themselves are shared.
class Kanban {
 public:
  static constexpr std::string_view photon_name = "kanban";

  static photon::MethodTable<Kanban> methods() {
    return {
        {"listTasks",
         &Kanban::list_tasks,
         "The tasks of a board (default: the session's board)",
         {{"board", "string", "Board name", false}}},
        {"addTask",
         &Kanban::add_task,
         "Add a task to a board",
         {{"title", "string", "What to do"},
          {"column", "string", "Column (default Todo)", false},
          {"board", "string", "Board (default: the session's board)", false}}},
        {"moveTask",
         &Kanban::move_task,
         "Move a task to another column; board:<name> hears of it",
         {{"taskId", "number", "The task"}, {"column", "string", "Its new column"}}},
        {"deleteTask",
         &Kanban::delete_task,
         "Delete a task, after the caller confirms",
         {{"taskId", "number", "The task"}}},
        {"useBoard",
         &Kanban::use_board,
         "Choose this session's board",
         {{"board", "string", "Board name"}}},
        {"currentBoard", &Kanban::current_board, "This session's board", {}},
        {"listBoards", &Kanban::list_boards, "Every board and how many tasks it has", {}},
        {"report",
         &Kanban::report,
         "A slow report that shows its progress",
         {{"seconds", "number", "How long it takes (default 2, at most 60)", false}}},
    };
  }

  json::value list_tasks(photon::Context&, const json::object& args) {
    const std::string board = string_arg(args, "board", board_);
    return json::object{{"board", board}, {"tasks", BoardStore::instance().list(board)}};
  }

  json::value add_task(photon::Context& context, const json::object& args) {
    const Task task =
        BoardStore::instance().add(string_arg(args, "board", board_), string_arg(args, "title"),
                                   string_arg(args, "column", "Todo"));
    context.emit(
        {{"channel", "board:" + task.board}, {"event", "task-added"}, {"data", to_json(task)}});
    return to_json(task);
  }

  json::value move_task(photon::Context& context, const json::object& args) {
    const std::int64_t id = task_id_arg(args);
    const std::string column = string_arg(args, "column");
    const Task before = BoardStore::instance().move(id, column);
    // As in the spec's example: the whole event goes to every subscriber of board:<name>.
    context.emit({{"channel", "board:" + before.board},
                  {"event", "task-moved"},
                  {"data", {{"taskId", id}, {"from", before.column}, {"column", column}}}});
    Task after = before;
    after.column = column;
    return json::object{{"success", true}, {"task", to_json(after)}};
  }

  json::value delete_task(photon::Context& context, const json::object& args) {
    const Task task = BoardStore::instance().get(task_id_arg(args));
    const std::optional<bool> confirmed =
        context.confirm("Delete task " + std::to_string(task.id) + " (" + task.title + ")?");
    if (!confirmed.value_or(false)) {
      return json::object{{"deleted", false}, {"taskId", task.id}};
    }
    BoardStore::instance().remove(task.id);
    context.emit({{"channel", "board:" + task.board},
                  {"event", "task-deleted"},
                  {"data", {{"taskId", task.id}}}});
    return json::object{{"deleted", true}, {"taskId", task.id}};
  }

  json::value use_board(photon::Context&, const json::object& args) {
    board_ = string_arg(args, "board");
    return json::object{{"board", board_}};
  }

  json::value current_board(photon::Context&, const json::object&) {
    return json::object{{"board", board_}};
  }

  json::value list_boards(photon::Context&, const json::object&) {
    return BoardStore::instance().boards();
  }

  json::value report(photon::Context& context, const json::object& args) {
    std::int64_t seconds = 2;
    if (const json::value* value = args.if_contains("seconds"); value && value->is_int64()) {
      seconds = std::clamp<std::int64_t>(value->get_int64(), 0, 60);
    }
    const int steps = 4;
    for (int step = 1; step <= steps; ++step) {
      // Short naps, so a shutdown (cancelled()) is noticed at once.
      const auto until =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(seconds * 1000 / steps);
      while (std::chrono::steady_clock::now() < until) {
        if (context.cancelled()) throw photon::MethodError("report cancelled");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      // No channel: progress for the caller alone.
      context.emit({{"message", "step " + std::to_string(step) + " of " + std::to_string(steps)},
                    {"percent", step * 100 / steps}});
    }
    return json::object{{"boards", BoardStore::instance().boards()}, {"seconds", seconds}};
  }

 private:
  std::string board_ = "main";
};

}  // namespace

int main(int argc, char** argv) { return photon::serve<Kanban>(argc, argv); }
