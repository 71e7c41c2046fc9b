/**
 * Where Atlas credentials may be sent: the OAuth client secret (Basic auth on the token
 * endpoint) and Digest exchanges go to the base URL, so it must be https, or plain http to this
 * machine only (local runs against the simulator). Used for a secret's BaseUrl and ATLAS_BASE_URL.
 */

const isLoopback = (hostname: string) =>
  hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);

/** What is wrong with a base URL ("is not https ..."), or undefined when credentials may go to it. Never quotes it. */
export function baseUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname)))
    return 'is not https (http is allowed only for localhost, 127.0.0.0/8 and [::1])';
  if (url.username !== '' || url.password !== '') return 'has a user name or password in it';
  return undefined;
}
