/**
 * The longest credential any front door or authenticator accepts, in characters. Real tokens are
 * far shorter (a JWT with many claims is a few KiB); past this it is garbage or an attack, refused
 * before any parsing or hashing.
 */
export const MAX_TOKEN_LENGTH = 16 * 1024;
