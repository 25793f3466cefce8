import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes that make runs findable in the Temporal UI's list view, e.g.
 * `RetoolPreset = "default" AND RetoolStage = "rl"` or `RetoolBestAccuracy > 0.5`.
 */
export const RetoolDataset = defineSearchAttributeKey('RetoolDataset', SearchAttributeType.KEYWORD);
export const RetoolStage = defineSearchAttributeKey('RetoolStage', SearchAttributeType.KEYWORD);
export const RetoolModel = defineSearchAttributeKey('RetoolModel', SearchAttributeType.KEYWORD);
export const RetoolPreset = defineSearchAttributeKey('RetoolPreset', SearchAttributeType.KEYWORD);
export const RetoolBestAccuracy = defineSearchAttributeKey('RetoolBestAccuracy', SearchAttributeType.DOUBLE);

export const RETOOL_SEARCH_ATTRIBUTES = [RetoolDataset, RetoolStage, RetoolModel, RetoolPreset, RetoolBestAccuracy] as const;
