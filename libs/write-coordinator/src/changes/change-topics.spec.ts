import { defaultTopic, entityTopic, topicOf } from './change-topics';

describe('change topics', () => {
  it.each([
    ['CreateSession', 'db.session.created'],
    ['DeleteChatMessage', 'db.chat_message.deleted'],
    ['UpdateUser2Fa', 'db.user2_fa.updated'],
    ['SetTitle', 'db.title.set'],
    ['ledger.transfer', 'ledger.transfer'],
    ['TransferFunds', 'TransferFunds'],
    ['Create', 'Create'],
    ['createSession', 'createSession'],
  ])('the seed convention maps %s to %s', (method, topic) => {
    expect(defaultTopic(method)).toBe(topic);
  });

  it('prefers a mapping, and falls back to the convention when it has no answer', () => {
    expect(topicOf('CreateSession', { CreateSession: 'sessions.new' })).toBe('sessions.new');
    expect(topicOf('CreateSession', { Other: 'x' })).toBe('db.session.created');
    expect(topicOf('CreateSession', { toString: 'x' } as never)).toBe('db.session.created');
    expect(topicOf('a.b', (method) => (method === 'a.b' ? 'mapped' : undefined))).toBe('mapped');
    expect(topicOf('CreateSession', () => undefined)).toBe('db.session.created');
  });

  it('names entity topics db.<entity>.<operation>', () => {
    expect(entityTopic('ChatMessage', 'soft-removed')).toBe('db.chat_message.soft-removed');
  });
});
