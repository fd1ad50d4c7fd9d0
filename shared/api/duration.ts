import { z } from 'zod';
import { DURATION_HINT, DURATION_PATTERN, isDuration } from '../util/duration.js';

/** A duration field of the API: the one grammar of shared/util/duration.ts. */
export const Duration = z.string().max(64).regex(DURATION_PATTERN, DURATION_HINT).refine(isDuration, DURATION_HINT).meta({ example: '30s' });
