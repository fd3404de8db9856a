/* eventsourcing-grpc for C: the event-sourcing core (no gRPC here; that is
 * esg/grpc.h).
 * Include this, or the headers under esg/ one by one. */
#ifndef ESG_H
#define ESG_H

#include "esg/error.h"
#include "esg/alloc.h"
#include "esg/env.h"
#include "esg/log.h"
#include "esg/value.h"
#include "esg/domain.h"
#include "esg/recorder.h"
#include "esg/mapper.h"
#include "esg/application.h"
#include "esg/system.h"
#include "esg/topic.h"

#endif
