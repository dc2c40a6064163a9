// The collaboration page: chat lines and whiteboard strokes of one group,
// live from the events stream. Strokes are records (payload: colour, width,
// points); erasing one deletes its record. Inline, small, no libraries.

export const groupPage = (g: string): string => `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Canopy group</title>
<style>body{font:14px sans-serif;margin:1em;display:flex;gap:1em;flex-wrap:wrap}canvas{border:1px solid #999;touch-action:none}#log{width:20em;height:24em;overflow:auto;border:1px solid #999;padding:4px}</style></head>
<body data-strokes="0"><div><canvas id="c" width="640" height="400"></canvas><br>
<input id="col" type="color" value="#1060c0"> <label><input id="er" type="checkbox"> erase</label></div>
<div><div id="log"></div><form id="f"><input id="t" maxlength="500" placeholder="say something" autocomplete="off"> <button>send</button></form></div>
<script>
const G=${JSON.stringify(g)},A='/api/groups/'+G,S=new Map,C=new Set,c=document.getElementById('c'),x=c.getContext('2d'),log=document.getElementById('log')
const post=(type,payload)=>fetch(A+'/records',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({type,payload})})
function draw(){x.clearRect(0,0,c.width,c.height);for(const s of S.values()){x.strokeStyle=s.c;x.lineWidth=s.w;x.beginPath();s.p.forEach((v,i)=>i%2||(i?x.lineTo(v,s.p[i+1]):x.moveTo(v,s.p[1])));x.stroke()}document.body.dataset.strokes=S.size}
function rec(r,gone){if(r.type==='stroke'){if(gone||r.deleted)S.delete(r.id);else try{S.set(r.id,JSON.parse(r.payload))}catch{}draw()}else if(r.type==='chat'&&!gone&&!r.deleted&&!C.has(r.id)){C.add(r.id);const d=document.createElement('div');d.textContent=r.author.slice(0,8)+': '+r.payload;log.append(d);log.scrollTop=1e9}}
let p=null
c.onpointerdown=e=>{if(document.getElementById('er').checked){for(const[id,s]of S)for(let i=0;i<s.p.length;i+=2)if(Math.hypot(s.p[i]-e.offsetX,s.p[i+1]-e.offsetY)<6)return fetch(A+'/records/'+id,{method:'DELETE'});return}p=[e.offsetX,e.offsetY]}
c.onpointermove=e=>{if(!p||p.length>1000)return;p.push(e.offsetX,e.offsetY);x.lineTo(e.offsetX,e.offsetY);x.stroke()}
c.onpointerup=()=>{if(p&&p.length>2)post('stroke',JSON.stringify({c:document.getElementById('col').value,w:3,p}));p=null}
document.getElementById('f').onsubmit=e=>{e.preventDefault();const t=document.getElementById('t');if(t.value)post('chat',t.value);t.value=''}
new EventSource(A+'/events').addEventListener('record',m=>{const d=JSON.parse(m.data);rec(d.record,d.change==='removed')})
fetch(A+'/records').then(r=>r.json()).then(j=>{for(const r of j.records)rec(r)})
</script></body></html>`
