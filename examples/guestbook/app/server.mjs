#!/usr/bin/env node
// @ts-check
// The guestbook's frontend: a page that lists messages read from the
// `redis-slave` service and adds messages through the `redis-master` service,
// like the reference's PHP frontend. With GET_HOSTS_FROM=env it finds both
// through the variables every pod gets for the services of its namespace
// (REDIS_MASTER_SERVICE_HOST/_PORT, REDIS_SLAVE_SERVICE_HOST/_PORT); otherwise
// through the names `redis-master` and `redis-slave` (cluster DNS).
//
// Listens on $POD_IP (the process runtime gives each pod its own loopback
// address) or every address, port $PORT or 80. No dependencies: runs on a bare
// `node` binary, in a container image or as a process-runtime pod.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { redisCommand } from './resp.mjs'

const listKey = 'messages'
/** The list keeps the newest this many messages. */
const messagesKeptMax = 100
const messageLengthMax = 500
const requestBodyBytesMax = 4096
const redisTimeoutMs = 2000
/** Without the service variables, exit after this long: the restart (immediate the first time) gets the services that exist by then. */
const missingServicesExitDelayMs = 3000

const podName = process.env.HOSTNAME ?? 'frontend'
const page = readFileSync(new URL('./index.html', import.meta.url), 'utf8').replaceAll('{{POD}}', escapeHtml(podName))

/**
 * @param {string} service `redis-master` or `redis-slave`
 * @returns {{ host: string, port: number } | undefined}
 */
function serviceAddress(service) {
  if (process.env.GET_HOSTS_FROM !== 'env') return { host: service, port: 6379 }
  const prefix = service.replace(/-/g, '_').toUpperCase()
  const host = process.env[`${prefix}_SERVICE_HOST`]
  const port = Number(process.env[`${prefix}_SERVICE_PORT`] ?? '6379')
  return host === undefined || host === '' ? undefined : { host, port }
}

const master = serviceAddress('redis-master')
const slave = serviceAddress('redis-slave')
if (master === undefined || slave === undefined) {
  const missing = [master === undefined ? 'REDIS_MASTER_SERVICE_HOST' : '', slave === undefined ? 'REDIS_SLAVE_SERVICE_HOST' : ''].filter((n) => n !== '')
  console.error(`guestbook: GET_HOSTS_FROM=env but ${missing.join(' and ')} unset: the services did not exist when this pod started; exiting so that the restart gets them`)
  setTimeout(() => process.exit(1), missingServicesExitDelayMs)
} else {
  serve(master, slave)
}

/**
 * @param {{ host: string, port: number }} masterAddress
 * @param {{ host: string, port: number }} slaveAddress
 */
function serve(masterAddress, slaveAddress) {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method === 'GET' && path === '/') return send(res, 200, 'text/html; charset=utf-8', page)
    if (req.method === 'GET' && path === '/healthz') return send(res, 200, 'text/plain', 'ok\n')
    if (req.method === 'GET' && path === '/messages') return void listMessages(res, slaveAddress)
    if (req.method === 'POST' && path === '/messages') return void addMessage(req, res, masterAddress)
    sendJson(res, 404, { error: `no ${req.method} ${path} here` })
  })
  const host = process.env.POD_IP || '0.0.0.0'
  const port = Number(process.env.PORT || '80')
  server.listen(port, host, () => {
    console.log(`guestbook frontend ${podName} on http://${host}:${port}/: reads from ${slaveAddress.host}:${slaveAddress.port}, writes to ${masterAddress.host}:${masterAddress.port}`)
  })
  const stop = () => server.close(() => process.exit(0))
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

/**
 * @param {import('node:http').ServerResponse} res
 * @param {{ host: string, port: number }} slaveAddress
 */
async function listMessages(res, slaveAddress) {
  try {
    const messages = await redisCommand(slaveAddress, ['LRANGE', listKey, '0', '-1'], redisTimeoutMs)
    sendJson(res, 200, { messages: Array.isArray(messages) ? messages : [], servedBy: podName })
  } catch (err) {
    sendJson(res, 503, { error: `reading from redis-slave: ${errorMessage(err)}`, servedBy: podName })
  }
}

/**
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 * @param {{ host: string, port: number }} masterAddress
 */
async function addMessage(req, res, masterAddress) {
  let message
  try {
    const body = await readBody(req)
    const parsed = JSON.parse(body)
    message = typeof parsed?.message === 'string' ? parsed.message.trim() : ''
  } catch (err) {
    return sendJson(res, 400, { error: `want a JSON body {"message": "..."}: ${errorMessage(err)}` })
  }
  if (message === '' || message.length > messageLengthMax) return sendJson(res, 400, { error: `a message has 1 to ${messageLengthMax} characters` })
  try {
    await redisCommand(masterAddress, ['RPUSH', listKey, message], redisTimeoutMs)
    await redisCommand(masterAddress, ['LTRIM', listKey, String(-messagesKeptMax), '-1'], redisTimeoutMs)
    sendJson(res, 201, { added: message, servedBy: podName })
  } catch (err) {
    sendJson(res, 503, { error: `writing to redis-master: ${errorMessage(err)}`, servedBy: podName })
  }
}

/** @param {import('node:http').IncomingMessage} req @returns {Promise<string>} */
function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk) => {
      body += chunk
      if (body.length > requestBodyBytesMax) {
        reject(new Error(`body over ${requestBodyBytesMax} bytes`))
        req.destroy()
      }
    })
    req.on('end', () => resolve(body))
    req.on('error', reject)
  })
}

/** @param {import('node:http').ServerResponse} res @param {number} status @param {string} type @param {string} body */
function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
  res.end(body)
}

/** @param {import('node:http').ServerResponse} res @param {number} status @param {unknown} value */
function sendJson(res, status, value) {
  send(res, status, 'application/json', JSON.stringify(value))
}

/** @param {unknown} err */
function errorMessage(err) {
  return err instanceof Error ? err.message : String(err)
}

/** @param {string} text */
function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}
