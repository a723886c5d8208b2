/*
 * board_layout.c: prints the compute board's layout (gpushare_board.h) as the compiler sees it,
 * and its grants' as JSON: constants, sizeof of every struct, offsetof and size of every field. The TypeScript
 * layout (src/gpu/region/board-layout.ts) is checked against this output (layout.test.ts).
 */
#include <stdio.h>

#include "gpushare_board.h"
#include "layout_json.h"

static const field board_fields[] = {
    F(gs_board, magic), F(gs_board, version), F(gs_board, slots), F(gs_board, slot),
};
static const field slot_fields[] = {
    F(gs_board_slot, owner), F(gs_board_slot, demand_ns), F(gs_board_slot, heartbeat_ns),
    F(gs_board_slot, share_ppm), F(gs_board_slot, priority), F(gs_board_slot, policy),
};
static const field grants_fields[] = {
    F(gs_grants, magic), F(gs_grants, version), F(gs_grants, entries), F(gs_grants, grant),
};
static const field grant_fields[] = {
    F(gs_grant, owner), F(gs_grant, live), F(gs_grant, uid), F(gs_grant, share_ppm), F(gs_grant, priority), F(gs_grant, policy),
};

int main(void)
{
    printf("{\n  \"constants\": {\"magic\": \"0x%016llx\", \"version\": %u, \"slots\": %u, \"headerSize\": %u, "
           "\"slotSize\": %u, \"fileSize\": %u, \"ownerPidShift\": %u, \"filePrefix\": \"%s\", "
           "\"grantsMagic\": \"0x%016llx\", \"grantsVersion\": %u, \"grantsFileSize\": %u, \"grantsFileSuffix\": \"%s\", "
           "\"grantsEnv\": \"%s\"},\n",
           (unsigned long long)GS_BOARD_MAGIC, GS_BOARD_VERSION, GS_BOARD_SLOTS, GS_BOARD_HEADER_SIZE,
           GS_BOARD_SLOT_SIZE, GS_BOARD_FILE_SIZE, GS_BOARD_OWNER_PID_SHIFT, GS_BOARD_FILE_PREFIX,
           (unsigned long long)GS_GRANTS_MAGIC, GS_GRANTS_VERSION, GS_GRANTS_FILE_SIZE, GS_GRANTS_FILE_SUFFIX, GS_GRANTS_ENV);
    printf("  \"structs\": {\n");
    print_struct("gs_board", sizeof(gs_board), board_fields, COUNT(board_fields), 0);
    print_struct("gs_board_slot", sizeof(gs_board_slot), slot_fields, COUNT(slot_fields), 0);
    print_struct("gs_grants", sizeof(gs_grants), grants_fields, COUNT(grants_fields), 0);
    print_struct("gs_grant", sizeof(gs_grant), grant_fields, COUNT(grant_fields), 1);
    printf("  }\n}\n");
    return 0;
}
