#pragma once
// A thin RAII layer over SQLite for radguard's embedded stores (consent registry, disclosure
// ledger). SQLite's types stay behind this interface; every failure becomes a Result.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace radguard::sqlite {

struct DatabaseCloser {
  void operator()(sqlite3* db) const noexcept;
};
struct StatementFinalizer {
  void operator()(sqlite3_stmt* statement) const noexcept;
};

// A prepared statement. Owns its sqlite3_stmt; must not outlive its Database. Not
// thread-safe.
class Statement {
 public:
  // Binds a parameter (1-based). Fail with ErrorCode::internal (a bug: bad index).
  [[nodiscard]] Status bind(int index, std::string_view text);
  [[nodiscard]] Status bind(int index, std::int64_t value);
  [[nodiscard]] Status bind_null(int index);
  // Binds text, or NULL when absent/empty.
  [[nodiscard]] Status bind_optional(int index, const std::optional<std::string>& text);

  // Binds parameters 1..N in order: integers as integers, std::optional<std::string> as
  // bind_optional, anything else as text. Stops at, and returns, the first failure, so a
  // statement never runs with a parameter silently left unbound.
  template <typename... Values>
  [[nodiscard]] Status bind_all(const Values&... values) {
    int index = 0;
    Status status;
    ((status = status ? bind_value(++index, values) : status), ...);
    return status;
  }

  // Advances: true when a row is available, false when done. Fails with ErrorCode::io
  // (busy after the timeout, disk errors) or ErrorCode::integrity (a constraint or trigger
  // refused the change).
  [[nodiscard]] Result<bool> step();
  // Runs a statement that returns no rows.
  [[nodiscard]] Status run();
  // Makes the statement ready to run again and clears its bindings. Never fails.
  [[nodiscard]] Status reset();

  // Column accessors for the current row (0-based); NULL reads as "" / 0.
  std::string text(int column) const;
  std::int64_t integer(int column) const;
  bool is_null(int column) const;

 private:
  template <typename Value>
  [[nodiscard]] Status bind_value(int index, const Value& value) {
    if constexpr (std::is_integral_v<Value>)
      return bind(index, static_cast<std::int64_t>(value));
    else if constexpr (std::is_same_v<Value, std::optional<std::string>>)
      return bind_optional(index, value);
    else
      return bind(index, std::string_view(value));
  }
  friend class Database;
  Statement(sqlite3* db, std::unique_ptr<sqlite3_stmt, StatementFinalizer> statement)
      : db_(db), statement_(std::move(statement)) {}
  sqlite3* db_;  // not owned
  std::unique_ptr<sqlite3_stmt, StatementFinalizer> statement_;
};

enum class OpenMode : std::uint8_t {
  create,     // read-write; the file is created (mode 0600) when missing
  existing,   // read-write; fails with ErrorCode::not_found when missing
  read_only,  // fails with ErrorCode::not_found when missing
};

// One connection. Not thread-safe: use one Database per thread (SQLite's locking then
// serialises writers across threads and processes).
class Database {
 public:
  // Opens a path or a "file:" URI. Writers that find the database locked wait up to
  // `busy_timeout` before failing with ErrorCode::io.
  [[nodiscard]] static Result<Database> open(
      const std::string& path_or_uri, OpenMode mode,
      std::chrono::milliseconds busy_timeout = std::chrono::seconds(30));

  // Runs one or more statements that return no rows.
  [[nodiscard]] Status exec(std::string_view sql);
  [[nodiscard]] Result<Statement> prepare(std::string_view sql);
  std::int64_t last_insert_rowid() const;
  // The names of the database's tables (so a store can refuse a file that belongs to
  // another store instead of adding its tables to it).
  [[nodiscard]] Result<std::vector<std::string>> table_names();
  const std::string& name() const { return name_; }

 private:
  Database(std::unique_ptr<sqlite3, DatabaseCloser> db, std::string name)
      : db_(std::move(db)), name_(std::move(name)) {}
  std::unique_ptr<sqlite3, DatabaseCloser> db_;
  std::string name_;
};

enum class TransactionKind : std::uint8_t {
  deferred,   // takes locks as statements need them (readers)
  immediate,  // takes the write lock at once (read-then-write sequences such as appends)
};

// Rolls back on destruction unless commit() succeeded. Not thread-safe.
class Transaction {
 public:
  [[nodiscard]] static Result<Transaction> begin(Database& db, TransactionKind kind);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  [[nodiscard]] Status commit();
  [[nodiscard]] Status rollback();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;  // not owned; null once finished
};

}  // namespace radguard::sqlite
