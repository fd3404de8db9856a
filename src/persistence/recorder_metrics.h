/* A recorder's metrics, for the layers that serve them (the application's families on the
 * gRPC server's /metrics). Internal: not part of the public API. */
#ifndef ESG_RECORDER_METRICS_H
#define ESG_RECORDER_METRICS_H

#include "core/buffer.h"
#include "esg/recorder.h"

/* Appends the families of recorder's backend, each sample labelled with labels (a
 * NULL-terminated list of names and values, borrowed), to out: the connections of a SQL
 * backend's pool, and SQLite's memory in this process. Nothing for a backend without metrics
 * (in memory). Any thread. */
void esg_recorder_write_metrics(esg_recorder *recorder, const char *const *labels, esg_buffer *out);

#endif
