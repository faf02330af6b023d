#include "postgres/postgres.hpp"
#include "sqlite/sqlite.hpp"
#include "store/database.hpp"

namespace radguard::store {

namespace {

// src/sqlite behind the store interface.
class SqliteStatement final : public Statement {
 public:
  explicit SqliteStatement(sqlite::Statement statement) : statement_(std::move(statement)) {}
  Status bind(int index, std::string_view text) override { return statement_.bind(index, text); }
  Status bind(int index, std::int64_t value) override { return statement_.bind(index, value); }
  Status bind_null(int index) override { return statement_.bind_null(index); }
  Result<bool> step() override { return statement_.step(); }
  Status reset() override { return statement_.reset(); }
  std::string text(int column) const override { return statement_.text(column); }
  std::int64_t integer(int column) const override { return statement_.integer(column); }
  bool is_null(int column) const override { return statement_.is_null(column); }

 private:
  sqlite::Statement statement_;
};

class SqliteDatabase final : public Database {
 public:
  SqliteDatabase(sqlite::Database db, OpenMode mode) : db_(std::move(db)), mode_(mode) {}
  Backend backend() const override { return Backend::sqlite; }
  Status exec(std::string_view sql) override { return db_.exec(sql); }
  Result<std::unique_ptr<Statement>> prepare(std::string_view sql) override {
    auto statement = db_.prepare(sql);
    if (!statement) return std::unexpected(statement.error());
    return std::make_unique<SqliteStatement>(std::move(*statement));
  }
  Result<std::vector<std::string>> table_names() override { return db_.table_names(); }
  Status begin(TransactionKind kind) override {
    if (kind == TransactionKind::immediate && mode_ == OpenMode::read_only)
      return fail(ErrorCode::usage, db_.name() + " is open read-only: no write transaction");
    return db_.exec(kind == TransactionKind::immediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
  }
  OpenMode mode() const override { return mode_; }
  const std::string& name() const override { return db_.name(); }

 private:
  sqlite::Database db_;
  OpenMode mode_;
};

}  // namespace

bool is_postgresql(std::string_view target) {
  return target.starts_with("postgresql://") || target.starts_with("postgres://") ||
         target.starts_with("postgres:");
}

bool names_a_file(std::string_view target) {
  return !target.empty() && !target.starts_with("file:") && !is_postgresql(target);
}

std::string display_name(std::string_view target) {
  if (is_postgresql(target)) return postgres::display_name(target);
  return std::string(target);
}

Result<std::unique_ptr<Database>> open(const std::string& target, OpenMode mode) {
  if (is_postgresql(target)) return postgres::connect(target, mode);
  auto db =
      sqlite::Database::open(target, mode == OpenMode::create     ? sqlite::OpenMode::create
                                     : mode == OpenMode::existing ? sqlite::OpenMode::existing
                                                                  : sqlite::OpenMode::read_only);
  if (!db) return std::unexpected(db.error());
  return std::make_unique<SqliteDatabase>(std::move(*db), mode);
}

}  // namespace radguard::store
