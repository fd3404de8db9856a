/* eventsourcing-grpc for C: the event-sourcing core (no gRPC here).
 * Include this, or the headers under esg/ one by one. */
#ifndef ESG_H
#define ESG_H

#include "esg/error.h"
#include "esg/env.h"
#include "esg/value.h"
#include "esg/domain.h"
#include "esg/recorder.h"

#endif
