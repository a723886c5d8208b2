/*
 * region_layout.c: prints the region layout as the compiler sees it, as JSON: constants,
 * sizeof of every struct, offsetof and size of every field. The TypeScript reader's layout
 * constants are checked against this output (src/gpu/region/layout.test.ts); the printing is
 * layout_json.h's, shared with board_layout.c.
 */
#include <stdio.h>

#include "gpushare_region.h"
#include "layout_json.h"

static const field header_fields[] = {
    F(gs_region_header, magic), F(gs_region_header, version), F(gs_region_header, header_size),
    F(gs_region_header, slot_size), F(gs_region_header, max_slots), F(gs_region_header, max_devices),
    F(gs_region_header, kinds), F(gs_region_header, file_size), F(gs_region_header, device_count),
    F(gs_region_header, lanes_per_slot), F(gs_region_header, created_at_ms), F(gs_region_header, creator_pid),
    F(gs_region_header, limited_kinds), F(gs_region_header, mem_limit), F(gs_region_header, core_limit_pct),
    F(gs_region_header, priority), F(gs_region_header, ticket), F(gs_region_header, release_epoch),
    F(gs_region_header, slots_hwm),
};
static const field slot_fields[] = {
    F(gs_region_slot, owner), F(gs_region_slot, pid), F(gs_region_slot, start_time),
    F(gs_region_slot, attached_at_ms), F(gs_region_slot, lanes), F(gs_region_slot, dev_total),
    F(gs_region_slot, dev), F(gs_region_slot, sm_partition),
};
static const field lane_fields[] = {F(gs_region_lane, meta), F(gs_region_lane, bytes)};
static const field slot_dev_fields[] = {
    F(gs_region_slot_dev, bytes), F(gs_region_slot_dev, kernels_launched), F(gs_region_slot_dev, busy_ns),
    F(gs_region_slot_dev, throttle_ns), F(gs_region_slot_dev, achieved_share), F(gs_region_slot_dev, target_share),
    F(gs_region_slot_dev, priority), F(gs_region_slot_dev, policy),
};
static const field file_fields[] = {F(gs_region_file, header), F(gs_region_file, slots)};

int main(void)
{
    printf("{\n  \"constants\": {\"magic\": \"0x%016llx\", \"version\": %u, \"maxDevices\": %u, \"maxSlots\": %u, "
           "\"lanes\": %u, \"kinds\": %u, \"headerSize\": %u, \"slotSize\": %u, \"fileSize\": %u, "
           "\"limitedKinds\": %u, \"shareOne\": %u, \"ownerStateShift\": %u, \"ownerPidShift\": %u, "
           "\"laneTicketShift\": %u, \"laneKindShift\": %u, \"laneDevShift\": %u},\n",
           (unsigned long long)GS_REGION_MAGIC, GS_REGION_VERSION, GS_REGION_MAX_DEVICES, GS_REGION_MAX_SLOTS,
           GS_REGION_LANES, GS_REGION_KINDS, GS_REGION_HEADER_SIZE, GS_REGION_SLOT_SIZE, GS_REGION_FILE_SIZE,
           GS_REGION_LIMITED_KINDS, GS_REGION_SHARE_ONE, GS_REGION_OWNER_STATE_SHIFT, GS_REGION_OWNER_PID_SHIFT,
           GS_REGION_LANE_TICKET_SHIFT, GS_REGION_LANE_KIND_SHIFT, GS_REGION_LANE_DEV_SHIFT);
    printf("  \"structs\": {\n");
    print_struct("gs_region_header", sizeof(gs_region_header), header_fields, COUNT(header_fields), 0);
    print_struct("gs_region_slot", sizeof(gs_region_slot), slot_fields, COUNT(slot_fields), 0);
    print_struct("gs_region_lane", sizeof(gs_region_lane), lane_fields, COUNT(lane_fields), 0);
    print_struct("gs_region_slot_dev", sizeof(gs_region_slot_dev), slot_dev_fields, COUNT(slot_dev_fields), 0);
    print_struct("gs_region_file", sizeof(gs_region_file), file_fields, COUNT(file_fields), 1);
    printf("  }\n}\n");
    return 0;
}
