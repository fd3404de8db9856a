/* gRPC's own log lines, written by esg_log: one format and one place for all of a process's
 * log, the JSON-lines format included. */
#include <grpc/support/log.h>
#include <stdatomic.h>

#include "esg/grpc.h"
#include "esg/log.h"

static _Atomic(const char *) app_of_lines; /* borrowed, from esg_grpc_log_to_esg_log */

static void write_grpc_line(gpr_log_func_args *args)
{
    esg_log_level level = args->severity == GPR_LOG_SEVERITY_ERROR  ? ESG_LOG_ERROR
                          : args->severity == GPR_LOG_SEVERITY_INFO ? ESG_LOG_INFO
                                                                    : ESG_LOG_DEBUG;
    esg_log(level, atomic_load(&app_of_lines), "gRPC: %s (%s:%d)", args->message, args->file,
            args->line);
}

void esg_grpc_log_to_esg_log(const char *app_name)
{
    atomic_store(&app_of_lines, app_name);
    gpr_set_log_function(write_grpc_line);
}
