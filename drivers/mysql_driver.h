// MySQL / MariaDB resource-manager driver (Connector/C++ 1.1). See docs/drivers.md.
#pragma once

#include <memory>
#include <string_view>

#include "drivers/resource_manager.h"

namespace dtx {

// Opens one session on `config`. Throws Errc::unavailable (server message
// filled in) when the server cannot be reached, Errc::misconfigured when it
// would roll back prepared branches at disconnect. Any thread may call it and
// use the session afterwards: the Connector/C++ per-thread setup is done here.
std::unique_ptr<Session> connect_mysql(const ResourceConfig& config);

// Whether `sql` holds more than one statement: a ';' outside quotes, backquotes
// and comments followed by anything but whitespace, comments and more ';'.
// Checked with and without backslash escapes in strings (sql_mode
// NO_BACKSLASH_ESCAPES may be set per session), so a string that would end
// differently under the two never hides a second statement. /*! ... */ is
// code to MySQL and scanned as code. Statements that start with CREATE, ALTER
// or BEGIN NOT (ATOMIC) may have a compound body with ';' inside one
// statement and are not checked. Pure; used by execute(), which runs one
// statement per call (the connection allows several for the driver's own
// XA END; XA PREPARE).
bool mysql_has_several_statements(std::string_view sql);

// Whether `sql` has the word RETURNING outside quotes and comments (MariaDB's
// INSERT / DELETE ... RETURNING, whose rows a prepared statement does not
// announce). Pure.
bool mysql_has_returning(std::string_view sql);

}  // namespace dtx
