/* eventsourcing_grpc_c.v1.Node, this library's own service beside the reference's protocol:
 * GetLeaderPositions answers what the server's node says of the leaders it follows (nothing
 * for a server without a node). Also the hooks by which a node adds to its server. */
#include <pthread.h>
#include <string.h>

#include "eventsourcing_grpc_c/v1/node.pb-c.h"
#include "grpc/server_internal.h"
#include "grpc/wire.h"
#include "core/alloc.h"

void srv_set_node_hooks(esg_server *server, const srv_node_hooks *hooks)
{
    pthread_mutex_lock(&server->node_hooks_lock);
    server->node_hooks = hooks != NULL ? *hooks : (srv_node_hooks){0};
    pthread_mutex_unlock(&server->node_hooks_lock);
}

void esg_leader_positions_clear(esg_leader_positions *positions)
{
    if (positions == NULL)
        return;
    for (size_t i = 0; i < positions->n_items; i++)
        esg_free(positions->items[i].leader_name);
    esg_free(positions->items);
    esg_free(positions->application_name);
    memset(positions, 0, sizeof *positions);
}

void srv_handle_leader_positions(server_call *c, const ProtobufCMessage *unused)
{
    (void)unused;
    esg_server *server = c->server;
    esg_leader_positions positions = {0};
    esg_error err = {0};
    esg_status rc = ESG_OK;
    pthread_mutex_lock(&server->node_hooks_lock);
    if (server->node_hooks.leader_positions != NULL)
        rc = server->node_hooks.leader_positions(server->node_hooks.ctx, &positions, &err);
    pthread_mutex_unlock(&server->node_hooks_lock);
    /* The reply points into positions and into these two arrays. */
    size_t n = positions.n_items;
    EventsourcingGrpcC__V1__LeaderPosition *items = esg_calloc(n ? n : 1, sizeof *items);
    EventsourcingGrpcC__V1__LeaderPosition **pointers = esg_calloc(n ? n : 1, sizeof *pointers);
    if (rc == ESG_OK && (items == NULL || pointers == NULL))
        rc = esg_error_set(&err, ESG_ENOMEM, "out of memory");
    EventsourcingGrpcC__V1__LeaderPositionsReply reply =
        EVENTSOURCING_GRPC_C__V1__LEADER_POSITIONS_REPLY__INIT;
    reply.application_name = (char *)esg_application_name(server->app);
    for (size_t i = 0; rc == ESG_OK && i < n; i++) {
        const esg_leader_position *from = &positions.items[i];
        EventsourcingGrpcC__V1__LeaderPosition *to = &items[i];
        *to =
            (EventsourcingGrpcC__V1__LeaderPosition)EVENTSOURCING_GRPC_C__V1__LEADER_POSITION__INIT;
        to->leader_name = from->leader_name;
        ESG_WIRE_POSITION_FIGURES(ESG_WIRE_COPY_FIGURE)
        pointers[i] = to;
    }
    reply.n_leaders = rc == ESG_OK ? n : 0;
    reply.leaders = pointers;
    srv_reply_message(c, rc, &err, &reply.base);
    esg_free(pointers);
    esg_free(items);
    esg_leader_positions_clear(&positions);
}
