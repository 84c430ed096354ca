#include "sql/recognizer.h"

namespace dtx::sql {

std::string Refusal::to_message() const {
  return what + " is not supported in AT mode; set mode = \"xa\" on this resource to run it";
}

Recognized recognize(std::string_view sql, Dialect dialect) {
  return dialect == Dialect::mysql ? recognize_mysql(sql) : recognize_postgres(sql);
}

}  // namespace dtx::sql
