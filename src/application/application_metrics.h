/* An application's metrics, for the layers that serve them (the gRPC server's /metrics).
 * Internal: not part of the public API. */
#ifndef ESG_APPLICATION_METRICS_H
#define ESG_APPLICATION_METRICS_H

#include "core/buffer.h"
#include "esg/application.h"

/* Writes the application's families, each labelled with its name: the highest notification id
 * (read from its recorder now; left out when that fails), the events recorded since it was
 * made, and how long its writes took (a histogram). Any thread. */
void esg_application_write_metrics(esg_application *app, esg_buffer *out);

#endif
