// Drives the service's web page and clip-front (from the clip-retrieval wheel) in headless
// Chromium. Environment: SERVER (http://127.0.0.1:PORT of the demo service), FRONT (where
// clip-front's static files are served), QUERY (an image file whose true copy is R000003),
// SHOTS (folder for screenshots), CHROMIUM (the browser, default /usr/bin/chromium).
import { chromium } from 'playwright-core'
import assert from 'node:assert/strict'
import path from 'node:path'

const { SERVER, FRONT, QUERY, SHOTS } = process.env
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium'
const timeout = 20000

function log (...a) { console.log('[browser]', ...a) }

const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] })
let failed = false
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  const errors = []
  page.on('pageerror', e => errors.push(String(e)))

  // 1. The page: upload the query, see both columns with the true copy first and marked.
  await page.goto(SERVER + '/')
  await page.getByTestId('served').filter({ hasText: 'dino' }).waitFor({ timeout })
  await page.getByTestId('file').setInputFiles(QUERY)
  const columns = page.getByTestId('column')
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=column]').length === 2 &&
    [...document.querySelectorAll('[data-testid=column]')].every(c => c.querySelectorAll('[data-testid=hit]').length > 0), null, { timeout })
  assert.deepEqual(await columns.evaluateAll(cs => cs.map(c => c.dataset.collection)), ['clip', 'dino'])
  for (const c of await columns.all()) {
    const first = c.getByTestId('hit').first()
    assert.equal(await first.getAttribute('data-id'), 'R000003')
    assert.match(await first.getAttribute('class'), /truth/)
    assert.ok(await first.locator('img').evaluate(img => img.complete && img.naturalWidth > 0), 'thumbnail loaded')
  }
  assert.match(await page.getByTestId('status').textContent(), /true copy: R000003/)
  await page.screenshot({ path: path.join(SHOTS, '1-page-upload.png'), fullPage: true })
  log('page: both columns shown, true copy first and highlighted')

  // 2. Click the second result of the clip column: its neighbours, itself first in both.
  const second = columns.first().getByTestId('hit').nth(1)
  const clicked = await second.getAttribute('data-id')
  await second.click()
  await page.getByTestId('status').filter({ hasText: `${clicked} (row` }).waitFor({ timeout })
  await page.getByTestId('status').filter({ hasText: 'Results for' }).waitFor({ timeout })
  for (const c of await columns.all()) {
    assert.equal(await c.getByTestId('hit').first().getAttribute('data-id'), clicked)
  }
  await page.screenshot({ path: path.join(SHOTS, '2-page-click.png'), fullPage: true })
  log(`page: clicked ${clicked}, its neighbours shown in both columns`)
  assert.deepEqual(errors, [], 'no script errors on the page')

  // 3. clip-front, pointed at the service, lists the collections and shows results.
  const front = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  const knn = []
  front.on('response', r => { if (r.url().endsWith('/knn-service')) knn.push(r.status()) })
  await front.goto(`${FRONT}/?back=${encodeURIComponent(SERVER)}&index=clip`)
  const options = front.locator('select').first().locator('option')
  await front.waitForFunction(() => true)
  await options.filter({ hasText: 'dino' }).waitFor({ state: 'attached', timeout })
  assert.deepEqual(await options.allTextContents(), ['clip', 'dino'])
  await front.locator('input[type=file]').setInputFiles(QUERY)
  await front.locator('img.pic').first().waitFor({ timeout })
  const pics = await front.locator('img.pic').count()
  assert.ok(pics >= 10, `clip-front shows ${pics} results`)
  await front.waitForFunction(() => true)
  assert.deepEqual(knn, [200])
  await front.locator('img.pic').first().evaluate(img => new Promise(resolve => {
    if (img.complete) resolve(); else img.onload = resolve
  }))
  assert.equal(await front.locator('img.pic').first().getAttribute('title'), 'R000003')
  await front.screenshot({ path: path.join(SHOTS, '3-clip-front.png'), fullPage: true })
  log(`clip-front: indices listed, ${pics} results for the uploaded image, R000003 first`)
} catch (e) {
  failed = true
  console.error(e)
} finally {
  await browser.close()
}
process.exit(failed ? 1 : 0)
