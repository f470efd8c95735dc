// `foresight-sdk/sources`: the GA4 / Segment event mapping behind the config's `sources`, and
// a Segment analytics-next plugin for pages that load analytics from npm.

import type { Foresight, TrackEvent } from './index.js';

/** A Segment analytics-next destination plugin (no network of its own). */
export interface SegmentPlugin {
  name: 'Foresight';
  type: 'destination';
  version: string;
  isLoaded(): boolean;
  load(): Promise<void>;
  track<Ctx extends { event?: { event?: string; properties?: Record<string, unknown> } }>(ctx: Ctx): Ctx;
}

/** Records the shop's Segment ecommerce events ("Product Viewed", "Product Added", "Order
 * Completed", …) in `foresight`: `analytics.register(segmentPlugin(fs))`. */
export function segmentPlugin(foresight: Pick<Foresight, 'track'>): SegmentPlugin;

/** The SDK events for one GA4 event (`view_item`, `add_to_cart`, `purchase`, …), or null for an
 * event it does not map; throws for one that cannot be read. */
export function mapGa4(name: string, params?: Record<string, unknown>): TrackEvent[] | null;

/** The SDK events for one Segment ecommerce event, or null for an event it does not map. */
export function mapSegment(name: string, properties?: Record<string, unknown>): TrackEvent[] | null;

/** Starts reading `sources` into `track`; returns the function that stops it. */
export function startSources(sources: Array<'ga4' | 'segment'>, track: (event: TrackEvent) => Promise<unknown>): () => void;
