// Kept apart from open.ts so that the CLI can list the choices in its help without loading the
// NVML (koffi) and simulated backends.
export const BACKEND_CHOICES = ['auto', 'nvml', 'simulated'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
