/* placeholder: replaced by the breaker implementation */
#include "provider/breaker.h"
