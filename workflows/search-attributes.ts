import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes that make runs findable in the Temporal UI's list view, e.g.
 * `RetoolStage = "prepare-data" AND RetoolDataset = "synth-default"`.
 */
export const RetoolDataset = defineSearchAttributeKey('RetoolDataset', SearchAttributeType.KEYWORD);
export const RetoolStage = defineSearchAttributeKey('RetoolStage', SearchAttributeType.KEYWORD);
export const RetoolModel = defineSearchAttributeKey('RetoolModel', SearchAttributeType.KEYWORD);

export const RETOOL_SEARCH_ATTRIBUTES = [RetoolDataset, RetoolStage, RetoolModel] as const;
