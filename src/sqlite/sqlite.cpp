#include "sqlite/sqlite.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>

namespace radguard::sqlite {

namespace {

Error error_from(sqlite3* db, int rc, std::string_view what) {
  const int primary = rc & 0xFF;
  const ErrorCode code = primary == SQLITE_CONSTRAINT ? ErrorCode::integrity
                         : primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB
                             ? ErrorCode::integrity
                         : primary == SQLITE_MISUSE || primary == SQLITE_RANGE ? ErrorCode::internal
                                                                               : ErrorCode::io;
  // sqlite3_errmsg names tables, columns and trigger messages, never bound values.
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Error{code, std::string(what) + ": " + message};
}

}  // namespace

void DatabaseCloser::operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
void StatementFinalizer::operator()(sqlite3_stmt* statement) const noexcept {
  sqlite3_finalize(statement);
}

Status Statement::bind(int index, std::string_view text) {
  const int rc = sqlite3_bind_text64(statement_.get(), index, text.data(), text.size(),
                                     SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) return std::unexpected(error_from(db_, rc, "binding a parameter"));
  return {};
}

Status Statement::bind(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(statement_.get(), index, value);
  if (rc != SQLITE_OK) return std::unexpected(error_from(db_, rc, "binding a parameter"));
  return {};
}

Status Statement::bind_null(int index) {
  const int rc = sqlite3_bind_null(statement_.get(), index);
  if (rc != SQLITE_OK) return std::unexpected(error_from(db_, rc, "binding a parameter"));
  return {};
}

Status Statement::bind_optional(int index, const std::optional<std::string>& text) {
  if (!text || text->empty()) return bind_null(index);
  return bind(index, *text);
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(statement_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return std::unexpected(error_from(db_, rc, "database statement failed"));
}

Status Statement::run() {
  auto stepped = step();
  if (!stepped) return std::unexpected(stepped.error());
  return reset();
}

Status Statement::reset() {
  sqlite3_reset(statement_.get());
  sqlite3_clear_bindings(statement_.get());
  return {};
}

std::string Statement::text(int column) const {
  const auto* p = sqlite3_column_text(statement_.get(), column);
  if (p == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<std::size_t>(sqlite3_column_bytes(statement_.get(), column)));
}

std::int64_t Statement::integer(int column) const {
  return sqlite3_column_int64(statement_.get(), column);
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(statement_.get(), column) == SQLITE_NULL;
}

Result<Database> Database::open(const std::string& path_or_uri, OpenMode mode,
                                std::chrono::milliseconds busy_timeout) {
  const bool is_uri = path_or_uri.starts_with("file:");
  if (!is_uri && mode != OpenMode::create) {
    std::error_code ec;
    if (!std::filesystem::exists(path_or_uri, ec))
      return fail(ErrorCode::not_found, path_or_uri + " does not exist");
  }
  int flags = SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;
  flags |= mode == OpenMode::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (mode == OpenMode::create) flags |= SQLITE_OPEN_CREATE;
  std::error_code ec;
  const bool is_new = !is_uri && !std::filesystem::exists(path_or_uri, ec);
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path_or_uri.c_str(), &raw, flags, nullptr);
  std::unique_ptr<sqlite3, DatabaseCloser> db(raw);
  if (rc != SQLITE_OK)
    return std::unexpected(error_from(db.get(), rc, "cannot open " + path_or_uri));
  // Registry and ledger hold personal data (consents) and the record of releases: new files
  // are readable by their owner only (SQLite gives its journals the same mode). chmod rather
  // than umask, which is process-wide and would race with other threads.
  if (is_new) {
    ::chmod(path_or_uri.c_str(), S_IRUSR | S_IWUSR);
  }
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), static_cast<int>(busy_timeout.count()));
  Database database(std::move(db), path_or_uri);
  // Fail now, with a clear message, on a file that is not SQLite at all.
  if (auto probe = database.exec("SELECT count(*) FROM sqlite_schema"); !probe)
    return fail(probe.error().code,
                "cannot read " + path_or_uri + " as a database: " + probe.error().message);
  return database;
}

Status Database::exec(std::string_view sql) {
  const std::string text(sql);
  const int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return std::unexpected(error_from(db_.get(), rc, name_));
  return {};
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc =
      sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
  std::unique_ptr<sqlite3_stmt, StatementFinalizer> statement(raw);
  if (rc != SQLITE_OK) return std::unexpected(error_from(db_.get(), rc, name_));
  return Statement(db_.get(), std::move(statement));
}

Result<std::vector<std::string>> Database::table_names() {
  auto s = prepare(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY "
      "name");
  if (!s) return std::unexpected(s.error());
  std::vector<std::string> names;
  for (;;) {
    auto row = s->step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    names.push_back(s->text(0));
  }
  return names;
}

std::int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_.get()); }

Result<Transaction> Transaction::begin(Database& db, TransactionKind kind) {
  if (auto s = db.exec(kind == TransactionKind::immediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
      !s)
    return std::unexpected(s.error());
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)db_->exec("ROLLBACK");
}

Status Transaction::commit() {
  if (db_ == nullptr) return fail(ErrorCode::internal, "transaction already finished");
  auto s = db_->exec("COMMIT");
  if (s) db_ = nullptr;
  return s;
}

Status Transaction::rollback() {
  if (db_ == nullptr) return {};
  Database* db = db_;
  db_ = nullptr;
  return db->exec("ROLLBACK");
}

}  // namespace radguard::sqlite
