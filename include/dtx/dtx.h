// The one header a dtx user includes.
#pragma once

#include "dtx/config.h"
#include "dtx/coordinator.h"
#include "dtx/error.h"
#include "dtx/logging.h"
#include "dtx/metrics.h"
#include "dtx/value.h"
#include "dtx/version.h"
