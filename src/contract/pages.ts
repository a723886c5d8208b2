/**
 * How task lists are paged, for the server and every client (kept free of zod, so that the
 * CLI's start-up does not load it). A list is a page of at most `limit` tasks in submission
 * order (seq); the answer's X-Next-Cursor header is the cursor of the next page, absent on the
 * last one. The body stays a JSON array of tasks, as it was before pages.
 */
export const TASK_LIST_DEFAULT_LIMIT = 500;
export const TASK_LIST_MAX_LIMIT = 1000;
export const NEXT_CURSOR_HEADER = 'x-next-cursor';
