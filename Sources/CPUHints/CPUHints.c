// The hints are inline functions in include/CPUHints.h; this file gives the target a translation unit.
#include "CPUHints.h"
