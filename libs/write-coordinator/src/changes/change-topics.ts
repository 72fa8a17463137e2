/**
 * How `submit()` method names map to change topics: an object from method name to topic, or a
 * function returning the topic (`undefined` falls back to the default convention).
 *
 * @example
 * WriteCoordinatorModule.forRoot({ topics: { 'ledger.transfer': 'db.transfer.created' } });
 */
export type TopicMapping = Readonly<Record<string, string>> | ((method: string) => string | undefined);

/** Past tense of the verbs the seed's method names start with (`CreateSession` → `created`). */
const PAST_TENSE: Readonly<Record<string, string>> = {
  Add: 'added',
  Create: 'created',
  Delete: 'deleted',
  Insert: 'inserted',
  Remove: 'removed',
  Rename: 'renamed',
  Save: 'saved',
  Set: 'set',
  Update: 'updated',
  Upsert: 'upserted',
};

/**
 * @internal The default topic of a method, after the seed: `CreateSession` → `db.session.created`,
 * `DeleteChatMessage` → `db.chat_message.deleted`. Names that do not start with a known verb
 * followed by a PascalCase noun (e.g. `ledger.transfer`) are their own topic.
 */
export function defaultTopic(method: string): string {
  const match = /^([A-Z][a-z]+)((?:[A-Z][a-z0-9]*)+)$/.exec(method);
  const past = match && PAST_TENSE[match[1]];
  return past ? `db.${snakeCase(match[2])}.${past}` : method;
}

/** @internal The topic of a method under an optional mapping. */
export function topicOf(method: string, mapping: TopicMapping | undefined): string {
  const mapped =
    typeof mapping === 'function'
      ? mapping(method)
      : mapping && Object.hasOwn(mapping, method)
        ? mapping[method]
        : undefined;
  return typeof mapped === 'string' && mapped !== '' ? mapped : defaultTopic(method);
}

/** @internal The topic of an entity-level change: `db.<entity in snake_case>.<operation>`. */
export function entityTopic(entity: string, operation: string): string {
  return `db.${snakeCase(entity)}.${operation}`;
}

function snakeCase(name: string): string {
  return name.replace(/(?<=[a-z0-9])([A-Z])/g, '_$1').toLowerCase();
}
