#include "sql/recognizer.h"

namespace dtx::sql {

Recognized recognize_mysql(std::string_view) { return Refusal{"(mysql recognizer not written yet)"}; }

}  // namespace dtx::sql
