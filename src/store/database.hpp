#pragma once
// The storage seam of the consent registry and the disclosure ledger: one small SQL
// interface with two implementations, SQLite (a file, src/sqlite) and PostgreSQL (a server,
// src/postgres, for many machines sharing one registry and one ledger). The stores write
// their SQL once, with ?N parameters; each backend keeps its own schema text where the two
// dialects differ (triggers, identity columns).
//
// A store target is a file path, a SQLite "file:" URI, a PostgreSQL URI
// ("postgresql://" or "postgres://") or "postgres:" followed by a libpq key=value
// connection string. Passwords in a target are never printed: name() and every error
// carry display_name(), which masks them.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/result.hpp"

namespace radguard::store {

enum class Backend : std::uint8_t { sqlite, postgresql };

enum class OpenMode : std::uint8_t {
  create,     // read-write; a SQLite file is created (mode 0600) when missing
  existing,   // read-write; a missing SQLite file fails with ErrorCode::not_found
  read_only,  // a reader's connection that cannot change anything and takes no writer's
              // lock: SQLite opens the file with SQLITE_OPEN_READONLY (a file of mode 0444
              // opens; a missing one fails with ErrorCode::not_found); on PostgreSQL every
              // transaction of the session is READ ONLY (default_transaction_read_only), so
              // the server refuses any write. Either way a write statement fails
              // (ErrorCode::io), and begin(TransactionKind::immediate) fails with
              // ErrorCode::usage before asking the server for the writers' lock.
};

enum class TransactionKind : std::uint8_t {
  deferred,   // a reader's consistent view
  immediate,  // the store's write lock at once, held to commit or rollback (read-then-write
              // sequences such as a ledger append): SQLite's BEGIN IMMEDIATE; on PostgreSQL
              // a transaction-scoped advisory lock keyed by the schema, so writers of one
              // store queue as they do on SQLite and never see a stale chain head
};

// A prepared statement; must not outlive its Database. Not thread-safe.
class Statement {
 public:
  virtual ~Statement() = default;
  // Binds a parameter (1-based). Fail with ErrorCode::internal (a bug: bad index).
  [[nodiscard]] virtual Status bind(int index, std::string_view text) = 0;
  [[nodiscard]] virtual Status bind(int index, std::int64_t value) = 0;
  [[nodiscard]] virtual Status bind_null(int index) = 0;
  // Binds text, or NULL when absent/empty.
  [[nodiscard]] Status bind_optional(int index, const std::optional<std::string>& text) {
    if (!text || text->empty()) return bind_null(index);
    return bind(index, *text);
  }
  // Binds parameters 1..N in order (integers as integers, optional strings as
  // bind_optional, anything else as text); stops at, and returns, the first failure.
  template <typename... Values>
  [[nodiscard]] Status bind_all(const Values&... values) {
    int index = 0;
    Status status;
    ((status = status ? bind_value(++index, values) : status), ...);
    return status;
  }
  // Advances: true when a row is available, false when done. Fails with ErrorCode::io
  // (busy or lock wait past the timeout, storage or connection errors) or
  // ErrorCode::integrity (a constraint or trigger refused the change).
  [[nodiscard]] virtual Result<bool> step() = 0;
  // Runs a statement that returns no rows, then resets it.
  [[nodiscard]] Status run() {
    auto stepped = step();
    if (!stepped) return std::unexpected(stepped.error());
    return reset();
  }
  // Makes the statement ready to run again and clears its bindings.
  [[nodiscard]] virtual Status reset() = 0;
  // Column accessors for the current row (0-based); NULL reads as "" / 0.
  virtual std::string text(int column) const = 0;
  virtual std::int64_t integer(int column) const = 0;
  virtual bool is_null(int column) const = 0;

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
};

// One connection. Not thread-safe: open one per thread or process.
class Database {
 public:
  virtual ~Database() = default;
  virtual Backend backend() const = 0;
  // Runs one or more statements that return no rows.
  [[nodiscard]] virtual Status exec(std::string_view sql) = 0;
  [[nodiscard]] virtual Result<std::unique_ptr<Statement>> prepare(std::string_view sql) = 0;
  // The tables of the store (SQLite: the file; PostgreSQL: the current schema), so a store
  // can refuse a database that belongs to another store instead of adding its tables.
  [[nodiscard]] virtual Result<std::vector<std::string>> table_names() = 0;
  // Starts a transaction (see TransactionKind); Transaction ends it. On a read_only
  // connection, TransactionKind::immediate fails with ErrorCode::usage.
  [[nodiscard]] virtual Status begin(TransactionKind kind) = 0;
  // How the connection was opened (read_only: see OpenMode).
  virtual OpenMode mode() const = 0;
  // The target as it may be printed (no password).
  virtual const std::string& name() const = 0;
};

// Rolls back on destruction unless commit() succeeded. Not thread-safe.
class Transaction {
 public:
  [[nodiscard]] static Result<Transaction> begin(Database& db, TransactionKind kind) {
    if (auto s = db.begin(kind); !s) return std::unexpected(s.error());
    return Transaction(&db);
  }
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (db_ != nullptr) (void)db_->exec("ROLLBACK");
  }
  [[nodiscard]] Status commit() {
    if (db_ == nullptr) return fail(ErrorCode::internal, "transaction already finished");
    auto s = db_->exec("COMMIT");
    if (s) db_ = nullptr;
    return s;
  }

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;  // not owned; null once finished
};

// Whether a target names a PostgreSQL database ("postgresql://", "postgres://", "postgres:").
bool is_postgresql(std::string_view target);
// Whether a target is a plain file path (not a "file:" URI, not PostgreSQL): only such
// targets can be checked for existence on disk.
bool names_a_file(std::string_view target);
// The target with any password masked ("postgresql://user:***@host:5432/db"), for messages.
std::string display_name(std::string_view target);

// Opens a store target. PostgreSQL connections that fail, time out or are refused fail
// closed with ErrorCode::io (the message names display_name(), never the password).
// OpenMode::create and existing are the same on PostgreSQL (a server database always exists).
[[nodiscard]] Result<std::unique_ptr<Database>> open(const std::string& target, OpenMode mode);

}  // namespace radguard::store
