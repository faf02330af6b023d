#include "postgres/postgres.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <string_view>
#include <vector>

namespace radguard::postgres {

namespace {

struct ResultClear {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultClear>;
struct ConnFinish {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnFinish>;
struct OptionsFree {
  void operator()(PQconninfoOption* o) const noexcept { PQconninfoFree(o); }
};

// The libpq connection string of a target: URIs as written, "postgres:" + key=value.
std::string conninfo_of(std::string_view target) {
  if (target.starts_with("postgresql://") || target.starts_with("postgres://"))
    return std::string(target);
  if (target.starts_with("postgres:")) target.remove_prefix(9);
  return std::string(target);
}

std::string trim_message(std::string message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  for (char& c : message)
    if (c == '\n' || c == '\t') c = ' ';
  return message;
}

// Removes every occurrence of `secret` from `text`.
std::string scrub(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at))
    text.replace(at, secret.size(), "***");
  return text;
}

struct Parsed {
  std::string display;
  std::string password;
  std::string sslmode;      // as the target says it; empty: not said
  std::string sslrootcert;  // as the target says it
  std::string service;      // the pg_service.conf section the target names, if any
  std::string servicefile;  // the service file the target names (libpq 18's servicefile=)
  bool ok = false;
};

Parsed parse(std::string_view target) {
  Parsed out;
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, OptionsFree> options(
      PQconninfoParse(conninfo_of(target).c_str(), &error));
  if (error != nullptr) PQfreemem(error);  // may quote the string: never shown
  if (!options) {
    out.display = "postgresql://(unreadable connection string)";
    return out;
  }
  std::string user, host, port, dbname;
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view key = o->keyword;
    if (key == "user") user = o->val;
    if (key == "host") host = o->val;
    if (key == "hostaddr" && host.empty()) host = o->val;
    if (key == "port") port = o->val;
    if (key == "dbname") dbname = o->val;
    if (key == "password") out.password = o->val;
    if (key == "sslmode") out.sslmode = o->val;
    if (key == "sslrootcert") out.sslrootcert = o->val;
    if (key == "service") out.service = o->val;
    if (key == "servicefile") out.servicefile = o->val;
  }
  out.display = "postgresql://" + (user.empty() ? "" : user + "@") + host +
                (port.empty() ? "" : ":" + port) + "/" + dbname;
  out.ok = true;
  return out;
}

// ?N placeholders (the stores' SQL, shared with SQLite) as $N, outside quoted text.
std::string dollar_parameters(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  char quote = 0;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '?' && i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
      out.push_back('$');
      continue;
    }
    out.push_back(c);
  }
  return out;
}

Error error_from(const PGresult* result, PGconn* conn, std::string_view what,
                 const std::string& password) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  // The primary message names tables, constraints and trigger texts; the detail, which
  // can quote row values, is never used.
  const char* primary =
      result != nullptr ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string message = primary != nullptr ? primary : trim_message(PQerrorMessage(conn));
  const std::string_view sqlstate = state != nullptr ? state : "";
  // 23: integrity constraint; P0001: a trigger's RAISE (append-only history).
  const ErrorCode code = sqlstate.starts_with("23") || sqlstate == "P0001" ? ErrorCode::integrity
                         : sqlstate.starts_with("42") && sqlstate != "42501" && sqlstate != "42P01"
                             ? ErrorCode::internal
                             : ErrorCode::io;
  return Error{code, std::string(what) + ": " + scrub(message, password)};
}

class PgStatement final : public store::Statement {
 public:
  PgStatement(PGconn* conn, std::string sql, const std::string* name, const std::string* password)
      : conn_(conn), sql_(std::move(sql)), name_(name), password_(password) {}

  Status bind(int index, std::string_view text) override {
    if (index < 1 || index > 999)
      return fail(ErrorCode::internal, "binding a parameter: bad index");
    // Parameters travel as C strings, and PostgreSQL's text holds no NUL: a value with one
    // (a patient ID "123\0X" from a file) would be cut to "123" and match another patient's
    // consent. Refused, where SQLite would have stored the whole value.
    if (text.find('\0') != std::string_view::npos)
      return fail(ErrorCode::integrity, "a value holds a NUL character (PostgreSQL cannot store it)");
    if (params_.size() < static_cast<std::size_t>(index)) params_.resize(index);
    params_[index - 1] = std::string(text);
    return {};
  }
  Status bind(int index, std::int64_t value) override {
    return bind(index, std::string_view(std::to_string(value)));
  }
  Status bind_null(int index) override {
    if (index < 1 || index > 999)
      return fail(ErrorCode::internal, "binding a parameter: bad index");
    if (params_.size() < static_cast<std::size_t>(index)) params_.resize(index);
    params_[index - 1].reset();
    return {};
  }

  Result<bool> step() override {
    if (!result_) {
      std::vector<const char*> values;
      values.reserve(params_.size());
      for (const auto& p : params_) values.push_back(p ? p->c_str() : nullptr);
      result_.reset(PQexecParams(conn_, sql_.c_str(), static_cast<int>(values.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0));
      const ExecStatusType status = result_ ? PQresultStatus(result_.get()) : PGRES_FATAL_ERROR;
      if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        Error e = error_from(result_.get(), conn_, *name_, *password_);
        result_.reset();
        return std::unexpected(std::move(e));
      }
      row_ = -1;
    }
    ++row_;
    return row_ < PQntuples(result_.get());
  }

  Status reset() override {
    result_.reset();
    params_.clear();
    row_ = -1;
    return {};
  }

  std::string text(int column) const override {
    if (!valid(column)) return {};
    return std::string(PQgetvalue(result_.get(), row_, column),
                       static_cast<std::size_t>(PQgetlength(result_.get(), row_, column)));
  }
  std::int64_t integer(int column) const override {
    const std::string value = text(column);
    std::int64_t out = 0;
    std::from_chars(value.data(), value.data() + value.size(), out);
    return out;
  }
  bool is_null(int column) const override {
    return !valid(column) || PQgetisnull(result_.get(), row_, column) != 0;
  }

 private:
  bool valid(int column) const {
    return result_ && row_ >= 0 && row_ < PQntuples(result_.get()) && column >= 0 &&
           column < PQnfields(result_.get());
  }
  PGconn* conn_;  // not owned
  std::string sql_;
  const std::string* name_;      // the Database's
  const std::string* password_;  // the Database's
  std::vector<std::optional<std::string>> params_;
  ResultPtr result_;
  int row_ = -1;
};

class PgDatabase final : public store::Database {
 public:
  PgDatabase(ConnPtr conn, std::string name, std::string password, store::OpenMode mode)
      : conn_(std::move(conn)), name_(std::move(name)), password_(std::move(password)),
        mode_(mode) {}

  store::Backend backend() const override { return store::Backend::postgresql; }

  Status exec(std::string_view sql) override {
    ResultPtr result(PQexec(conn_.get(), std::string(sql).c_str()));
    const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      return std::unexpected(error_from(result.get(), conn_.get(), name_, password_));
    // COMMIT of a transaction that failed earlier succeeds as a command but rolls back.
    if (sql == "COMMIT" && std::string_view(PQcmdStatus(result.get())) == "ROLLBACK")
      return fail(ErrorCode::integrity, name_ + ": the transaction was rolled back, not committed");
    return {};
  }

  Result<std::unique_ptr<store::Statement>> prepare(std::string_view sql) override {
    if (PQstatus(conn_.get()) != CONNECTION_OK)
      return fail(ErrorCode::io, name_ + ": the connection to the server was lost");
    return std::make_unique<PgStatement>(conn_.get(), dollar_parameters(sql), &name_, &password_);
  }

  Result<std::vector<std::string>> table_names() override {
    auto s = prepare(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_type = 'BASE TABLE' ORDER BY table_name");
    if (!s) return std::unexpected(s.error());
    std::vector<std::string> names;
    for (;;) {
      auto row = (*s)->step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      names.push_back((*s)->text(0));
    }
    return names;
  }

  Status begin(store::TransactionKind kind) override {
    if (kind == store::TransactionKind::deferred)
      return exec(mode_ == store::OpenMode::read_only
                      ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                      : "BEGIN ISOLATION LEVEL REPEATABLE READ");
    // A reader never queues behind writers, nor makes them queue behind it.
    if (mode_ == store::OpenMode::read_only)
      return fail(ErrorCode::usage, name_ + " is open read-only: no write transaction");
    // Writers of one store (one schema) queue on a transaction-scoped advisory lock, taken
    // before anything is read: a ledger append then reads the chain head that the previous
    // writer committed, exactly as under SQLite's BEGIN IMMEDIATE. Read committed is right
    // under the lock (each statement sees every commit made before it); SERIALIZABLE would
    // instead abort one of two appenders, and its retry cannot repeat a publish step.
    auto begun = exec(
        "BEGIN ISOLATION LEVEL READ COMMITTED; "
        "SELECT pg_advisory_xact_lock(1919378276, hashtext(coalesce(current_schema(), '')))");
    // A lock wait that timed out leaves the transaction open and aborted: without a rollback
    // every later command on this connection (a gateway's, for its whole life) would fail.
    if (!begun && PQtransactionStatus(conn_.get()) != PQTRANS_IDLE)
      PQclear(PQexec(conn_.get(), "ROLLBACK"));
    return begun;
  }

  const std::string& name() const override { return name_; }
  store::OpenMode mode() const override { return mode_; }

 private:
  ConnPtr conn_;
  std::string name_;
  std::string password_;
  store::OpenMode mode_;
};

void ignore_notice(void*, const char*) {}

bool at_least_require(std::string_view sslmode) {
  return sslmode == "require" || sslmode == "verify-ca" || sslmode == "verify-full";
}

std::string trim_blanks(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  return std::string(text.substr(first, text.find_last_not_of(" \t\r") - first + 1));
}

// What a section of a pg_service.conf says about TLS.
struct ServiceTls {
  bool found = false;  // the file has the section
  std::string sslmode, sslrootcert;
};

ServiceTls service_tls_in(const std::string& file, const std::string& service) {
  ServiceTls out;
  std::ifstream in(file);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    const std::string text = trim_blanks(line);
    if (text.empty() || text.front() == '#') continue;
    if (text.front() == '[') {
      inside = text == "[" + service + "]";
      out.found = out.found || inside;
      continue;
    }
    const auto equals = text.find('=');
    if (!inside || equals == std::string::npos) continue;
    const std::string key = trim_blanks(std::string_view(text).substr(0, equals));
    const std::string value = trim_blanks(std::string_view(text).substr(equals + 1));
    if (key == "sslmode") out.sslmode = value;
    if (key == "sslrootcert") out.sslrootcert = value;
  }
  return out;
}

std::string from_env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// The service's TLS settings, found as libpq finds the service: in the target's servicefile,
// else PGSERVICEFILE, else ~/.pg_service.conf; then, when the section is not there, in
// PGSYSCONFDIR's pg_service.conf (else Debian's libpq's, /etc/postgresql-common).
ServiceTls service_tls(const std::string& service, const std::string& servicefile) {
  const std::string home = from_env("HOME");
  const std::string user = !servicefile.empty()               ? servicefile
                           : !from_env("PGSERVICEFILE").empty() ? from_env("PGSERVICEFILE")
                           : !home.empty()                     ? home + "/.pg_service.conf"
                                                               : std::string();
  if (!user.empty())
    if (ServiceTls found = service_tls_in(user, service); found.found) return found;
  const std::string sysconf = from_env("PGSYSCONFDIR");
  return service_tls_in((sysconf.empty() ? "/etc/postgresql-common" : sysconf) + "/pg_service.conf",
                        service);
}

// The sslmode a connection uses, and where it comes from: the target's own when it names one;
// otherwise its service's (the target's service=, else PGSERVICE, as libpq takes it) when that
// asks for at least `require`; otherwise PGSSLMODE when it does; otherwise verify-full when a
// root certificate is named (the target's or its service's sslrootcert, or PGSSLROOTCERT),
// else require. radguard passes the sslmode to libpq itself, so libpq never applies a service
// file's: it is read here, and a service that cannot be found is refused rather than its
// verify-full silently becoming require. A service file's or PGSSLMODE's weaker mode is not
// taken: they are often shared by other users and programs, and libpq's `prefer` falls back to
// an unencrypted connection without a word (a ledger's patient hashes and a registry's patient
// IDs would cross the network in the clear); sslmode=disable in the target is the explicit way.
Result<std::pair<std::string, std::string>> effective_sslmode(const Parsed& parsed) {
  if (!parsed.sslmode.empty()) return std::pair<std::string, std::string>{parsed.sslmode, "the target"};
  const std::string name = !parsed.service.empty() ? parsed.service : from_env("PGSERVICE");
  const ServiceTls service = name.empty() ? ServiceTls{} : service_tls(name, parsed.servicefile);
  if (!name.empty() && !service.found)
    return fail(ErrorCode::usage, "the PostgreSQL service named (service= or PGSERVICE) is in no "
                                  "pg_service.conf radguard can read, so its TLS settings are not "
                                  "known");
  using Mode = std::pair<std::string, std::string>;
  if (at_least_require(service.sslmode)) return Mode{service.sslmode, "its service's pg_service.conf"};
  const std::string env = from_env("PGSSLMODE");
  if (at_least_require(env)) return Mode{env, "PGSSLMODE"};
  if (!parsed.sslrootcert.empty() || !service.sslrootcert.empty() || !from_env("PGSSLROOTCERT").empty())
    return Mode{"verify-full", "radguard's default with a root certificate"};
  return Mode{"require", "radguard's default"};
}

}  // namespace

std::string display_name(std::string_view target) { return parse(target).display; }

Result<std::unique_ptr<store::Database>> connect(const std::string& target,
                                                 store::OpenMode mode) {
  const Parsed parsed = parse(target);
  if (!parsed.ok)
    return fail(ErrorCode::usage, "cannot read the PostgreSQL connection string " + parsed.display);
  const std::string conninfo = conninfo_of(target);
  const auto mode_and_source = effective_sslmode(parsed);
  if (!mode_and_source)
    return fail(mode_and_source.error().code,
                "cannot connect to " + parsed.display + ": " + mode_and_source.error().message);
  const auto& [sslmode, sslmode_from] = *mode_and_source;
  // Earlier keywords are defaults: the expanded target overrides them (an sslmode it names
  // included).
  const char* keywords[] = {"connect_timeout", "application_name", "sslmode", "dbname", nullptr};
  const char* values[] = {"10", "radguard", sslmode.c_str(), conninfo.c_str(), nullptr};
  ConnPtr conn(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
  if (!conn) return fail(ErrorCode::io, "cannot connect to " + parsed.display + ": out of memory");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    std::string reason = scrub(trim_message(PQerrorMessage(conn.get())), parsed.password);
    // A server without TLS, met with the default: say what to do instead of libpq's words alone.
    if (parsed.sslmode.empty() && reason.find("SSL") != std::string::npos)
      reason += " (radguard connects with sslmode=" + sslmode + ", from " + sslmode_from +
                ", unless the target names an sslmode; the server offers no TLS: enable TLS on "
                "it, or, only for a server on this machine or a trusted network, add "
                "sslmode=disable to the target)";
    return fail(ErrorCode::io, "cannot connect to " + parsed.display + ": " + reason);
  }
  PQsetNoticeProcessor(conn.get(), ignore_notice, nullptr);
  auto db =
      std::make_unique<PgDatabase>(std::move(conn), parsed.display, parsed.password, mode);
  if (auto s = db->exec("SET client_encoding = 'UTF8'; SET lock_timeout = '30s'; "
                        "SET client_min_messages = warning");
      !s)
    return std::unexpected(s.error());
  // Every transaction READ ONLY, those begun implicitly by a single statement included.
  if (mode == store::OpenMode::read_only)
    if (auto s = db->exec("SET default_transaction_read_only = on"); !s)
      return std::unexpected(s.error());
  return std::unique_ptr<store::Database>(std::move(db));
}

}  // namespace radguard::postgres
