/* placeholder: replaced by the fleet limit implementation */
#include "provider/fleet_limit.h"
