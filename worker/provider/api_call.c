/* placeholder */
#include "provider/api_call.h"
