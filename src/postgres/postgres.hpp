#pragma once
// PostgreSQL behind the store interface (store/database.hpp), through libpq. libpq's types
// stay in this folder.
//
// Targets: "postgresql://..." and "postgres://..." URIs, or "postgres:" followed by a libpq
// key=value connection string ("postgres:host=db port=5432 dbname=radguard"). Passwords
// may come from the target, PGPASSWORD or ~/.pgpass; none is ever printed.
//
// Encryption: a target that names no sslmode connects with sslmode=require (verify-full
// when it names an sslrootcert or PGSSLROOTCERT is set; PGSSLMODE only when it asks for
// require, verify-ca or verify-full; the pg_service.conf section the target names, or else
// PGSERVICE names, likewise, and its sslrootcert as the target's; the section is looked up as
// libpq does (servicefile=, PGSERVICEFILE, ~/.pg_service.conf, PGSYSCONFDIR), and a service
// found in none of them is refused), never libpq's default `prefer`, which falls back to
// an unencrypted connection without a word. A server without TLS is then refused with a
// message that says so; sslmode=disable in the target is the explicit way to accept one.
#include <memory>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "store/database.hpp"

namespace radguard::postgres {

// "postgresql://user@host:port/dbname" (password left out), rebuilt from the parsed target
// so that no spelling of a password survives; "postgresql://(unreadable connection string)"
// when libpq cannot parse it.
std::string display_name(std::string_view target);

// Connects (10 s connect timeout unless the target sets one; lock waits up to 30 s, as
// SQLite's busy timeout). Fails closed with ErrorCode::io when the server cannot be
// reached or refuses the connection, ErrorCode::usage for an unreadable target; messages
// carry display_name() and libpq's reason with any password removed. With
// store::OpenMode::read_only every transaction of the session is READ ONLY (the server
// refuses writes) and no writers' lock can be taken (store/database.hpp).
[[nodiscard]] Result<std::unique_ptr<store::Database>> connect(
    const std::string& target, store::OpenMode mode = store::OpenMode::existing);

}  // namespace radguard::postgres
