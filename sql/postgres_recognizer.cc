#include "sql/recognizer.h"

namespace dtx::sql {

Recognized recognize_postgres(std::string_view) { return Refusal{"(postgres recognizer not written yet)"}; }

}  // namespace dtx::sql
