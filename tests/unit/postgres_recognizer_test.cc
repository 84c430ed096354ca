#include <gtest/gtest.h>

#include "sql/recognizer.h"
